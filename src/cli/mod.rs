//! The command line: clap types, subcommands and everything printed to the terminal.
//!
//! [`Cli`] is parsed in `main`; [`run`] converts it into plain requests for `suite` and maps
//! outcomes to an [`ExitCode`], the only place exit codes are decided. This module and
//! `report::console` are the only ones that print.

mod output;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::suite::discover::{DEFAULT_PATTERN, discover};
use crate::suite::load::{LoadOptions, Loaded, load};

/// Exit codes, Taurus and MMS compatible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// All criteria passed (or, for `validate`, every suite is valid).
    Ok = 0,
    /// An invalid suite, a server that failed, an engine or report failure.
    Error = 1,
    /// A usage error (reported by clap).
    Usage = 2,
    /// A criterion failed or had no data.
    CriteriaFailed = 3,
    /// Interrupted by SIGINT.
    Interrupted = 130,
    /// Terminated by SIGTERM.
    Terminated = 143,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        Self::from(code as u8)
    }
}

const EXIT_CODES: &str = "Exit codes:
  0    all criteria passed (validate: all suites valid)
  1    error: invalid suite, server failed to start or crashed, engine or report failure
  2    usage error
  3    a criterion failed (or a criterion had no data)
  130  interrupted by SIGINT (reports are still written, servers stopped)
  143  terminated by SIGTERM (reports are still written, servers stopped)";

/// Run declarative YAML performance suites and gate on criteria over time windows.
#[derive(Debug, Parser)]
#[command(name = "perfgate", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run suites: start their servers, drive the load, write reports.
    Run(Box<RunArgs>),
    /// Load and validate suites, print what each would run; send nothing.
    Validate(SuiteArgs),
    /// List suites with their executions, scenarios, labels and criteria.
    List {
        #[command(flatten)]
        suites: SuiteArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Re-render junit.xml, report.html, summary.md and the per-suite files from a results.json.
    Report {
        /// A results.json written by `perfgate run`.
        #[arg(value_name = "RESULTS.json")]
        results: PathBuf,
        /// Where the reports go (default: the directory of RESULTS.json).
        #[arg(short = 'a', long = "artifacts-dir", value_name = "DIR")]
        artifacts_dir: Option<PathBuf>,
        #[command(flatten)]
        outputs: OutputArgs,
    },
    /// Compare a run with an earlier one: per suite and label, each KPI before and now, and
    /// whether it regressed beyond the threshold and the run-to-run noise (exit 3 if so).
    Compare {
        /// The baseline: an earlier results.json.
        #[arg(value_name = "OLD.json")]
        old: PathBuf,
        /// The run to judge: a results.json.
        #[arg(value_name = "NEW.json")]
        new: PathBuf,
        /// How much worse a KPI may get before it counts as a regression (percent; for the
        /// error rate, percentage points).
        #[arg(long, default_value = "10%", value_parser = parse_percent_arg)]
        threshold: f64,
        /// One KPI's own threshold, e.g. `p99=20%` or `error-rate=0.5` (KPIs: avg-rt, p50,
        /// p90, p99, throughput, error-rate, mean); repeatable.
        #[arg(long, value_name = "KPI=PERCENT", value_parser = parse_kpi_threshold)]
        kpi_threshold: Vec<(crate::compare::Kpi, f64)>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
        format: CompareFormat,
        /// Also write the comparison as an HTML page here.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Also write the comparison as JUnit XML here (a failed testcase per regression).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// The change points of a history directory: per suite, label and KPI, the run where a
    /// lasting shift or drift began, its size and its confidence (E-divisive means). Exit 3
    /// when the latest run begins a change for the worse.
    History {
        /// A history directory (`perfgate run --history DIR`).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Smaller changes are not shown (percent; for the error rate, percentage points).
        #[arg(long, default_value = "5%", value_parser = parse_percent_arg)]
        min_change: f64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
        format: CompareFormat,
    },
    /// Run the reference model server (KServe v2 REST, Prometheus /metrics).
    DemoServer(DemoArgs),
    /// Print a JMeter plan (.jmx) as the equivalent perfgate YAML (executions and scenarios),
    /// with what the import approximates as comments.
    ImportJmx {
        /// The plan.
        file: PathBuf,
        /// A JMeter property for `${__P(NAME,default)}`, as JMeter's -J: `-J port=8080`.
        #[arg(short = 'J', long = "property", value_name = "NAME=VALUE")]
        properties: Vec<String>,
    },
    /// Print the JSON Schema of the suite format (or of results.json).
    Schema {
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// The schema of `results.json` instead of the suite format.
        #[arg(long)]
        results: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// How `perfgate compare` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    Table,
    Json,
    Markdown,
}

/// `p99=20%`: a KPI and its own threshold.
fn parse_kpi_threshold(text: &str) -> Result<(crate::compare::Kpi, f64), String> {
    let (kpi, percent) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KPI=PERCENT, e.g. p99=20%"))?;
    let kpi = crate::compare::Kpi::parse(kpi.trim()).ok_or_else(|| {
        format!("unknown KPI `{kpi}`: avg-rt, p50, p90, p99, throughput, error-rate or mean")
    })?;
    Ok((kpi, parse_percent_arg(percent.trim())?))
}

/// The thresholds of a comparison: one for all KPIs, then each KPI's own.
fn thresholds(default: f64, own: &[(crate::compare::Kpi, f64)]) -> crate::compare::Thresholds {
    own.iter().fold(
        crate::compare::Thresholds::uniform(default),
        |t, (kpi, v)| t.with(*kpi, *v),
    )
}

fn parse_percent_arg(text: &str) -> Result<f64, String> {
    crate::suite::units::parse_percent(text)
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| format!("`{text}` is not a percentage such as 10% or 5"))
}

/// `perfgate run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub suites: SuiteArgs,
    /// Where reports go (default: reports/<UTC timestamp>/).
    #[arg(short = 'a', long = "artifacts-dir", value_name = "DIR")]
    pub artifacts_dir: Option<PathBuf>,
    /// Validate and print the plan, send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print only errors and the final tables.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// No progress lines.
    #[arg(long)]
    pub no_progress: bool,
    /// Stop after the first suite that does not complete.
    #[arg(long)]
    pub fail_fast: bool,
    /// Load-generator threads (default: half the CPU cores, at least one; at most 1024).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Seed for think times and arrivals (default: from the clock; recorded in results.json).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub outputs: OutputArgs,
    /// Compare with a baseline after the run: a results.json, or a history directory (the
    /// latest earlier run of each suite). A regression beyond the threshold and the noise
    /// fails the run (exit 3), as `perfgate compare` says.
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    /// In a history, the baseline is the latest run of this git revision (a commit prefix).
    #[arg(long, value_name = "REV")]
    pub baseline_rev: Option<String>,
    /// How much worse a KPI may get against the baseline (percent).
    #[arg(long, default_value = "10%", value_parser = parse_percent_arg)]
    pub baseline_threshold: f64,
    /// One KPI's own threshold against the baseline, e.g. `p99=20%` or `error-rate=0.5`
    /// (KPIs: avg-rt, p50, p90, p99, throughput, error-rate, mean); repeatable.
    #[arg(long, value_name = "KPI=PERCENT", value_parser = parse_kpi_threshold)]
    pub baseline_kpi_threshold: Vec<(crate::compare::Kpi, f64)>,
    /// Keep this run's results in DIR (`<UTC start>__<commit>.json`), and use DIR as the
    /// baseline when `--baseline` is not given.
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// Runs a history keeps (the oldest go).
    #[arg(long, value_name = "N", default_value_t = crate::compare::history::DEFAULT_KEEP)]
    pub history_keep: usize,
}

/// Where the run-level reports go (default: in the artifacts directory).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write the run's JUnit XML here (default: <artifacts>/junit.xml).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the HTML report here (default: <artifacts>/report.html).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write results.json here (default: <artifacts>/results.json).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the Markdown summary here, e.g. "$GITHUB_STEP_SUMMARY" (default: <artifacts>/summary.md).
    #[arg(long = "summary-md", value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

impl OutputArgs {
    fn destinations(&self) -> crate::report::Destinations {
        crate::report::Destinations {
            junit: self.junit.clone(),
            html: self.html.clone(),
            json: self.json.clone(),
            summary_md: self.summary_md.clone(),
            summary_md_before: self
                .summary_md
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default(),
        }
    }
}

/// `perfgate demo-server` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Port to listen on (0: a free port, printed on start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Run a supervisor and this many worker processes sharing the port (0: one process).
    #[arg(long, default_value_t = 0)]
    pub workers: u32,
    /// The model name served under /v2/models/NAME.
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Extra time per inference, e.g. 20ms.
    #[arg(long, default_value = "0ms", value_parser = parse_duration_arg)]
    pub latency: std::time::Duration,
    /// Up to this much more per inference, uniformly at random.
    #[arg(long, default_value = "0ms", value_parser = parse_duration_arg)]
    pub jitter: std::time::Duration,
    /// Share of inferences answered with HTTP 500, from 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Stall inferences that arrive this long after start ...
    #[arg(long, value_parser = parse_duration_arg)]
    pub stall_after: Option<std::time::Duration>,
    /// ... until this much later.
    #[arg(long, default_value = "1s", value_parser = parse_duration_arg)]
    pub stall_for: std::time::Duration,
    /// At most this many inferences at once (per process), the rest queued: with
    /// `--latency`, a server of known capacity (N / latency requests per second).
    #[arg(long)]
    pub max_concurrency: Option<u32>,
    /// OpenAI-compatible generation: time to the first token.
    #[arg(long, default_value = "50ms", value_parser = parse_duration_arg)]
    pub ttft: std::time::Duration,
    /// ... then this long between tokens.
    #[arg(long, default_value = "10ms", value_parser = parse_duration_arg)]
    pub itl: std::time::Duration,
    /// ... and this many tokens in a reply (fewer with the request's `max_tokens`).
    #[arg(long, default_value_t = 16)]
    pub tokens: u32,
    #[arg(long, hide = true)]
    pub worker: bool,
}

fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    crate::suite::units::parse_duration(text).map_err(|e| format!("{e}; {}", e.hint()))
}

/// Which suites, and what to layer on them.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Suite files, directories (searched recursively) or globs.
    #[arg(default_value = "suites/")]
    pub paths: Vec<String>,
    /// File-name pattern for directory searches.
    #[arg(short = 'p', long, default_value = DEFAULT_PATTERN)]
    pub pattern: String,
    /// Leave out files matching this glob (repeatable).
    #[arg(short = 'x', long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Config merged before every suite (repeatable, in order).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Merge environments/NAME.yaml beside each suite (MMS --env).
    #[arg(short = 'e', long = "env", value_name = "NAME")]
    pub env: Option<String>,
    /// Override a key: -o execution.0.concurrency=5 (VALUE is YAML; -1 appends; ^key deletes).
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE", value_parser = override_syntax)]
    pub overrides: Vec<String>,
}

/// The first error a console stream met, shared by every writer of the process.
type ConsoleError = std::sync::Arc<std::sync::OnceLock<std::io::ErrorKind>>;

/// stdout or stderr as the commands see them: a write never fails (a full disk or a closed
/// pipe must not cut a run short or turn its verdict into something else); the first error is
/// kept, and [`run`] decides what it means for the exit code.
struct Console<W> {
    inner: W,
    error: ConsoleError,
}

impl<W: Write> Write for Console<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.error.get().is_none()
            && let Err(e) = self.inner.write_all(buf)
        {
            let _ = self.error.set(e.kind());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.error.get().is_none()
            && let Err(e) = self.inner.flush()
        {
            let _ = self.error.set(e.kind());
        }
        Ok(())
    }
}

/// `-o KEY=VALUE` as a usage matter: a key path of non-empty parts, then `=`. The value is
/// YAML, read (and located in errors) with the suite.
fn override_syntax(text: &str) -> Result<String, String> {
    let Some((key, _)) = text.split_once('=') else {
        return Err(format!(
            "expected KEY=VALUE, found `{text}`; e.g. -o execution.0.concurrency=5"
        ));
    };
    if key.trim().is_empty() || key.split('.').any(|part| part.trim().is_empty()) {
        return Err(format!(
            "`{key}` is not a key path: write parts separated by dots, e.g. -o settings.env.HOST=x"
        ));
    }
    Ok(text.to_owned())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let error = ConsoleError::default();
    // Neither is locked: the run's tables are written from the runtime's threads, the
    // progress bar's thread writes to stderr too.
    let mut stdout = Console {
        inner: std::io::stdout(),
        error: error.clone(),
    };
    let mut stderr = Console {
        inner: std::io::stderr(),
        error: error.clone(),
    };
    let result = match cli.command {
        Command::Run(args) => run_command(&args, &mut stdout, &mut stderr, &error),
        Command::Validate(args) => validate(&args, &mut stdout, &mut stderr),
        Command::List { suites, format } => list(&suites, format, &mut stdout, &mut stderr),
        Command::Schema { output, results } => schema(output, results, &mut stdout, &mut stderr),
        Command::ImportJmx { file, properties } => {
            import_jmx(&file, &properties, &mut stdout, &mut stderr)
        }
        Command::Report {
            results,
            artifacts_dir,
            outputs,
        } => report(&results, artifacts_dir, &outputs, &mut stdout, &mut stderr),
        Command::Compare {
            old,
            new,
            threshold,
            kpi_threshold,
            format,
            html,
            junit,
        } => compare(
            &old,
            &new,
            thresholds(threshold, &kpi_threshold),
            format,
            (html.as_deref(), junit.as_deref()),
            &mut stdout,
            &mut stderr,
        ),
        Command::History {
            dir,
            min_change,
            format,
        } => history(&dir, min_change, format, &mut stdout, &mut stderr),
        Command::DemoServer(args) => {
            drop(stdout);
            demo_server(args, &mut stderr)
        }
    };
    let code = result.unwrap_or(ExitCode::Error);
    match error.get() {
        // A closed pipe (`perfgate list | head`) is not a failure of ours.
        None | Some(std::io::ErrorKind::BrokenPipe) => code,
        // Output that could not be written never turns a failed gate into a pass; it makes
        // a pass an error, since the user saw nothing.
        Some(_) if code == ExitCode::Ok => ExitCode::Error,
        Some(_) => code,
    }
}

fn run_command(
    args: &RunArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    console_error: &ConsoleError,
) -> std::io::Result<ExitCode> {
    // The run's own directory from the start: `${ARTIFACTS_DIR}` in the suites is it (made
    // absolute, so servers and commands with another working directory find it too).
    let artifacts_dir = match (&args.artifacts_dir, args.dry_run) {
        (Some(dir), _) => dir.clone(),
        (None, true) => crate::run::default_artifacts_dir(),
        (None, false) => match crate::run::claim_default_artifacts_dir() {
            Ok(dir) => dir,
            Err(e) => {
                writeln!(stderr, "error: cannot create the artifacts directory: {e}")?;
                return Ok(ExitCode::Error);
            }
        },
    };
    let root = std::path::absolute(&artifacts_dir).unwrap_or_else(|_| artifacts_dir.clone());
    let loaded = match load_suites(&args.suites, &root, stderr)? {
        Ok(l) => l,
        Err(Rejected::Invalid(loaded)) if !args.dry_run => {
            // CI shows why in its test report, not "no test results".
            let dir = artifacts_dir.clone();
            let report = crate::report::redact::Redactor::default()
                .with_values(loaded.secret_values.iter().cloned())
                .report(invalid_run_report(&loaded));
            if let Err(e) = crate::report::write_all(&report, &dir, &args.outputs.destinations()) {
                writeln!(
                    stderr,
                    "error: failed to write reports in `{}`: {e}",
                    dir.display()
                )?;
            } else {
                writeln!(stdout, "reports: {}", dir.display())?;
            }
            writeln!(stdout, "{}", crate::report::console::verdict_line(&report))?;
            return Ok(ExitCode::Error);
        }
        Err(rejected) => return Ok(rejected.code()),
    };
    if args.dry_run {
        for suite in &loaded.suites {
            writeln!(stdout, "{}", output::plan_summary(suite))?;
        }
        return Ok(ExitCode::Ok);
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    // Every user needs a socket: refuse now rather than fail samples with EMFILE later.
    let connections = loaded
        .suites
        .iter()
        .map(crate::run::limits::connections)
        .max()
        .unwrap_or(0);
    if let Err(e) = crate::run::limits::ensure(connections) {
        writeln!(stderr, "error: {e}")?;
        return Ok(ExitCode::Error);
    }
    let plans = loaded
        .suites
        .into_iter()
        .map(|s| crate::plan::SuitePlan::new(s, seed))
        .collect();
    let opts = crate::run::RunOptions {
        artifacts_dir: artifacts_dir.clone(),
        destinations: args.outputs.destinations(),
        progress: !args.no_progress && !args.quiet,
        fail_fast: args.fail_fast,
        seed,
        environment: args.suites.env.clone(),
        baselines: crate::run::Baselines {
            path: args.baseline.clone(),
            rev: args.baseline_rev.clone(),
            history: args.history.clone(),
            threshold: thresholds(args.baseline_threshold, &args.baseline_kpi_threshold),
        },
    };
    // Half the cores by default: the server under test usually shares the machine, and a load
    // generator that starves it measures itself.
    let threads = args.threads.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            writeln!(stderr, "error: failed to start the async runtime: {e}")?;
            return Ok(ExitCode::Error);
        }
    };
    // The dispatcher runs as a task on the runtime's workers, not on this thread: waking a
    // parked main thread for every sample costs more than the request itself.
    let console_error = console_error.clone();
    let task = runtime.spawn(async move {
        let mut progress = Console {
            inner: std::io::stderr(),
            error: console_error.clone(),
        };
        let mut tables = Console {
            inner: std::io::stdout(),
            error: console_error,
        };
        crate::run::run_suites(plans, &opts, &mut progress, &mut tables).await
    });
    let report = match runtime.block_on(task) {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            writeln!(
                stderr,
                "error: failed to write reports in `{}`: {e}",
                artifacts_dir.display()
            )?;
            return Ok(ExitCode::Error);
        }
        Err(e) => {
            // The panic unwound through the dispatcher, dropping (and so killing) every
            // server and shellexec command; their guards would have killed them anyway.
            writeln!(
                stderr,
                "error: perfgate failed internally (a bug; please report it): {e}\n  \
                 its servers were stopped; suites finished before are in `{}`",
                artifacts_dir.join("results.json").display()
            )?;
            return Ok(ExitCode::Error);
        }
    };
    write!(
        stdout,
        "{}",
        crate::report::console::criteria_table(&report)
    )?;
    writeln!(stdout, "reports: {}", artifacts_dir.display())?;
    let mut code = exit_code(&report);
    if let Some(missing) = args.baseline.as_ref().filter(|b| !b.exists()) {
        writeln!(
            stderr,
            "error: the baseline `{}` does not exist (give a results.json or a history directory)",
            missing.display()
        )?;
        code = ExitCode::Error;
    }
    // Each suite was compared with its baseline as it ended (its reports show it); the
    // run's verdict adds the regressions.
    let compared: Vec<&crate::report::versus::Versus> = report
        .suites
        .iter()
        .filter_map(|s| s.versus.as_ref())
        .collect();
    if !compared.is_empty() {
        let comparison = crate::compare::Comparison {
            rows: compared
                .iter()
                .flat_map(|v| v.rows.iter().cloned())
                .collect(),
            notes: compared
                .iter()
                .flat_map(|v| v.notes.iter().cloned())
                .collect(),
        };
        let source = args
            .baseline
            .as_ref()
            .or(args.history.as_ref())
            .map_or_else(
                || "settings.baseline".to_owned(),
                |p| p.display().to_string(),
            );
        write!(
            stdout,
            "vs baseline ({source}):\n{}",
            crate::compare::render::table(
                &comparison,
                &thresholds(args.baseline_threshold, &args.baseline_kpi_threshold)
            )
        )?;
        for error in compared.iter().filter_map(|v| v.error.as_ref()) {
            writeln!(stderr, "error: {error}")?;
            code = ExitCode::Error;
        }
        if let Err(e) = keep_comparison(&comparison, &artifacts_dir) {
            writeln!(stderr, "error: cannot write the comparison: {e}")?;
            code = ExitCode::Error;
        }
    }
    if let Some(dir) = &args.history
        && let Err(e) = crate::compare::history::store(dir, &report, args.history_keep)
    {
        writeln!(
            stderr,
            "error: cannot keep the run in `{}`: {e}",
            dir.display()
        )?;
        code = ExitCode::Error;
    }
    // The last line is the verdict: a regression against the baseline fails a run whose
    // criteria passed.
    let verdict = crate::report::console::verdict_line(&report);
    writeln!(stdout, "{verdict}")?;
    Ok(code)
}

/// The report of a run whose suites did not validate: an error suite per invalid file, its
/// diagnostics as the error's details.
fn invalid_run_report(loaded: &Loaded) -> crate::report::RunReport {
    let errors: Vec<&crate::suite::diagnostics::Diagnostic> =
        loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    let suites = loaded
        .failed
        .iter()
        .map(|path| {
            let shown = crate::suite::source::display_path(path);
            let own: Vec<&crate::suite::diagnostics::Diagnostic> = errors
                .iter()
                .copied()
                .filter(|d| {
                    d.span
                        .is_some_and(|s| loaded.sources.get(s.file).name == shown)
                })
                .collect();
            let details: String = if own.is_empty() {
                errors.iter().map(|d| d.render(&loaded.sources)).collect()
            } else {
                own.iter().map(|d| d.render(&loaded.sources)).collect()
            };
            let first = own
                .first()
                .or(errors.first())
                .copied()
                .map_or_else(|| "the suite is invalid".to_owned(), |d| d.message.clone());
            let name = path
                .file_stem()
                .map_or_else(|| shown.clone(), |s| s.to_string_lossy().into_owned());
            crate::report::model::SuiteReport::invalid(
                name,
                shown,
                format!("invalid suite: {first}"),
                details,
            )
        })
        .collect();
    crate::report::RunReport {
        format_version: crate::report::model::FORMAT_VERSION,
        tool: format!("perfgate {}", env!("CARGO_PKG_VERSION")),
        started_at: crate::run::now_rfc3339(),
        duration_s: 0.0,
        status: crate::report::model::RunStatus::Completed,
        meta: crate::run::run_meta(),
        suites,
    }
}

/// The comparison with the baseline beside the run's reports, as `compare.json` (the
/// suites' reports, summary.md among them, show it already).
fn keep_comparison(
    comparison: &crate::compare::Comparison,
    artifacts_dir: &std::path::Path,
) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(comparison).map_err(std::io::Error::other)?;
    crate::report::files::write_atomically(&artifacts_dir.join("compare.json"), json.as_bytes())
}

/// `perfgate compare OLD NEW`: exit 3 when a KPI regressed, 0 otherwise, 1 on errors.
fn compare(
    old: &std::path::Path,
    new: &std::path::Path,
    threshold: crate::compare::Thresholds,
    format: CompareFormat,
    (html, junit): (Option<&std::path::Path>, Option<&std::path::Path>),
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> std::io::Result<ExitCode> {
    // OLD may be a history directory: each suite's latest earlier run there.
    let comparison = crate::compare::load(new).and_then(|new_run| {
        if old.is_dir() {
            crate::compare::against(old, &new_run, None, threshold)
        } else {
            let old_run = crate::compare::load(old)?;
            Ok(crate::compare::compare(&old_run, &new_run, threshold))
        }
    });
    let comparison = match comparison {
        Ok(c) => c,
        Err(e) => {
            writeln!(stderr, "error: {e}")?;
            return Ok(ExitCode::Error);
        }
    };
    let text = match format {
        CompareFormat::Table => crate::compare::render::table(&comparison, &threshold),
        CompareFormat::Markdown => crate::compare::render::markdown(&comparison, &threshold),
        CompareFormat::Json => {
            let mut json =
                serde_json::to_string_pretty(&comparison).map_err(std::io::Error::other)?;
            json.push('\n');
            json
        }
    };
    write!(stdout, "{text}")?;
    use crate::report::files::write_atomically;
    if let Some(path) = html {
        let page = crate::compare::render::html(&comparison, &threshold)
            .map_err(std::io::Error::other)
            .and_then(|page| write_atomically(path, page.as_bytes()));
        if let Err(e) = page {
            writeln!(stderr, "error: cannot write `{}`: {e}", path.display())?;
            return Ok(ExitCode::Error);
        }
    }
    if let Some(path) = junit {
        let xml =
            crate::report::junit::to_xml(&crate::compare::render::junit(&comparison, &threshold))
                .and_then(|xml| write_atomically(path, xml.as_bytes()));
        if let Err(e) = xml {
            writeln!(stderr, "error: cannot write `{}`: {e}", path.display())?;
            return Ok(ExitCode::Error);
        }
    }
    Ok(if comparison.regressions() > 0 {
        ExitCode::CriteriaFailed
    } else {
        ExitCode::Ok
    })
}

/// `perfgate history DIR`: the change points of a history.
fn history(
    dir: &std::path::Path,
    min_change: f64,
    format: CompareFormat,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> std::io::Result<ExitCode> {
    use crate::compare::trend;
    if !dir.is_dir() {
        writeln!(
            stderr,
            "error: `{}` is not a history directory (one that `perfgate run --history DIR` fills)",
            dir.display()
        )?;
        return Ok(ExitCode::Error);
    }
    let runs = match trend::read(dir) {
        Ok((runs, skipped)) => {
            for why in skipped {
                writeln!(stderr, "warning: skipped in the history: {why}")?;
            }
            runs
        }
        Err(e) => {
            writeln!(stderr, "error: {e}")?;
            return Ok(ExitCode::Error);
        }
    };
    let trends = trend::trends(&runs, min_change);
    let text = match format {
        CompareFormat::Table => crate::compare::render::changes_table(&trends),
        CompareFormat::Markdown => crate::compare::render::changes_markdown(&trends),
        CompareFormat::Json => {
            let mut json = serde_json::to_string_pretty(&trends).map_err(std::io::Error::other)?;
            json.push('\n');
            json
        }
    };
    write!(stdout, "{text}")?;
    let latest = trends.runs.len().saturating_sub(1);
    let tonight = trends
        .changes
        .iter()
        .any(|c| c.worse && c.index == latest && !trends.runs.is_empty());
    Ok(if tonight {
        ExitCode::CriteriaFailed
    } else {
        ExitCode::Ok
    })
}

/// `perfgate report RESULTS.json`: every report again, from saved results.
fn report(
    results: &std::path::Path,
    artifacts_dir: Option<PathBuf>,
    outputs: &OutputArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> std::io::Result<ExitCode> {
    let text = match std::fs::read_to_string(results) {
        Ok(t) => t,
        Err(e) => {
            writeln!(stderr, "error: cannot read `{}`: {e}", results.display())?;
            return Ok(ExitCode::Error);
        }
    };
    let run: crate::report::RunReport = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            writeln!(
                stderr,
                "error: `{}` line {}: not a perfgate results.json: {e}\n  hint: pass the results.json that `perfgate run` wrote in its artifacts directory",
                results.display(),
                e.line()
            )?;
            return Ok(ExitCode::Error);
        }
    };
    if run.format_version > crate::report::model::FORMAT_VERSION {
        writeln!(
            stderr,
            "error: `{}` has format version {}; this perfgate reads up to {}\n  hint: re-render it with a newer perfgate",
            results.display(),
            run.format_version,
            crate::report::model::FORMAT_VERSION
        )?;
        return Ok(ExitCode::Error);
    }
    let dir = artifacts_dir.unwrap_or_else(|| {
        results
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf)
    });
    let mut destinations = outputs.destinations();
    // Re-rendering in place must not rewrite the results it reads from elsewhere.
    destinations
        .json
        .get_or_insert_with(|| dir.join("results.json"));
    if let Err(e) = crate::report::write_all(&run, &dir, &destinations) {
        writeln!(
            stderr,
            "error: failed to write reports in `{}`: {e}",
            dir.display()
        )?;
        return Ok(ExitCode::Error);
    }
    write!(stdout, "{}", crate::report::console::criteria_table(&run))?;
    writeln!(stdout, "reports: {}", dir.display())?;
    writeln!(stdout, "{}", crate::report::console::verdict_line(&run))?;
    Ok(exit_code(&run))
}

/// The exit code of a run. An error outranks a failed criterion: the criteria of a broken
/// run prove nothing.
fn exit_code(run: &crate::report::RunReport) -> ExitCode {
    use crate::report::model::{RunStatus, SuiteStatus};
    match run.status {
        RunStatus::Interrupted => ExitCode::Interrupted,
        RunStatus::Terminated => ExitCode::Terminated,
        // A checkpoint: perfgate was killed before the run ended.
        RunStatus::Incomplete => ExitCode::Error,
        RunStatus::Completed
            if run
                .suites
                .iter()
                .any(|s| s.status != SuiteStatus::Completed) =>
        {
            ExitCode::Error
        }
        RunStatus::Completed if run.suites.iter().any(|s| s.criteria_failed()) => {
            ExitCode::CriteriaFailed
        }
        RunStatus::Completed => ExitCode::Ok,
    }
}

fn demo_server(args: DemoArgs, stderr: &mut dyn Write) -> std::io::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.error_rate) {
        writeln!(
            stderr,
            "error: --error-rate must be between 0 and 1, got {}",
            args.error_rate
        )?;
        return Ok(ExitCode::Usage);
    }
    let opts = crate::demo::DemoOptions {
        host: args.host,
        port: args.port,
        workers: args.workers,
        model: args.model,
        latency: args.latency,
        jitter: args.jitter,
        error_rate: args.error_rate,
        stall_after: args.stall_after,
        stall_for: args.stall_for,
        max_concurrency: args.max_concurrency,
        worker: args.worker,
        llm: crate::demo::llm::LlmOptions {
            ttft: args.ttft,
            itl: args.itl,
            tokens: args.tokens,
        },
    };
    let announce: crate::demo::Announce = |line| {
        let mut out = std::io::stdout().lock();
        // Readiness checks may wait for this line: write it whole, at once.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    match crate::demo::run(opts, announce) {
        Ok(()) => Ok(ExitCode::Ok),
        Err(e) => {
            writeln!(stderr, "error: {}", output::error_chain(&e))?;
            Ok(ExitCode::Error)
        }
    }
}

/// `${ARTIFACTS_DIR}` when suites are only validated or listed: where a run would put them.
fn validation_root() -> PathBuf {
    crate::run::default_artifacts_dir()
}

/// Why suites were not loaded: nothing found, or invalid (with what was loaded, so `run` can
/// still write reports that say why).
enum Rejected {
    NotFound,
    Invalid(Loaded),
}

impl Rejected {
    fn code(&self) -> ExitCode {
        ExitCode::Error
    }
}

fn load_suites(
    args: &SuiteArgs,
    artifacts_root: &std::path::Path,
    stderr: &mut dyn Write,
) -> std::io::Result<Result<Loaded, Rejected>> {
    let discovery = match discover(&args.paths, &args.pattern, &args.exclude) {
        Ok(d) => d,
        Err(e) => {
            writeln!(stderr, "error: {}", output::error_chain(&e))?;
            return Ok(Err(Rejected::NotFound));
        }
    };
    let opts = LoadOptions {
        configs: args.config.clone(),
        env: args.env.clone(),
        overrides: args.overrides.clone(),
        artifacts_root: artifacts_root.to_owned(),
        perfgate: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("perfgate")),
    };
    let loaded = load(&discovery, &opts);
    // A diagnostic quotes the user's line, which may hold a secret of a suite that loaded.
    let redactor = loaded
        .suites
        .iter()
        .map(crate::report::redact::Redactor::for_suite)
        .fold(crate::report::redact::Redactor::default(), |a, b| {
            a.merge(b)
        })
        .with_values(loaded.secret_values.iter().cloned());
    write!(
        stderr,
        "{}",
        redactor.text(&loaded.diagnostics.render(&loaded.sources))
    )?;
    if loaded.diagnostics.has_errors() {
        let errors = loaded.diagnostics.error_count();
        let files = loaded.failed.len();
        let total = discovery.suites.len();
        writeln!(
            stderr,
            "error: {errors} {} in {files} of {total} suite {}; nothing was run",
            plural(errors, "problem", "problems"),
            plural(total, "file", "files"),
        )?;
        return Ok(Err(Rejected::Invalid(loaded)));
    }
    Ok(Ok(loaded))
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn validate(
    args: &SuiteArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> std::io::Result<ExitCode> {
    let loaded = match load_suites(args, &validation_root(), stderr)? {
        Ok(l) => l,
        Err(rejected) => return Ok(rejected.code()),
    };
    for suite in &loaded.suites {
        writeln!(stdout, "{}", output::plan_summary(suite))?;
    }
    let warnings = loaded.diagnostics.warning_count();
    let n = loaded.suites.len();
    let warned = if warnings == 0 {
        String::new()
    } else {
        format!(" ({warnings} {})", plural(warnings, "warning", "warnings"))
    };
    writeln!(stdout, "{n} {} valid{warned}", plural(n, "suite", "suites"))?;
    Ok(ExitCode::Ok)
}

fn list(
    args: &SuiteArgs,
    format: Format,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> std::io::Result<ExitCode> {
    let loaded = match load_suites(args, &validation_root(), stderr)? {
        Ok(l) => l,
        Err(rejected) => return Ok(rejected.code()),
    };
    match format {
        Format::Table => write!(stdout, "{}", output::table(&loaded.suites))?,
        Format::Json => {
            // Secrets and sensitive headers are `***` here too.
            let suites: Vec<serde_json::Value> = loaded
                .suites
                .iter()
                .map(|suite| {
                    let mut json = serde_json::to_value(suite).unwrap_or_default();
                    crate::report::redact::Redactor::for_suite(suite).config(&mut json);
                    json
                })
                .collect();
            let json = serde_json::to_string_pretty(&suites).map_err(std::io::Error::other)?;
            writeln!(stdout, "{json}")?;
        }
    }
    Ok(ExitCode::Ok)
}

fn import_jmx(
    file: &std::path::Path,
    properties: &[String],
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> std::io::Result<ExitCode> {
    let mut props = std::collections::BTreeMap::new();
    for p in properties {
        let Some((k, v)) = p.split_once('=') else {
            writeln!(stderr, "error: `-J {p}` is not NAME=VALUE")?;
            return Ok(ExitCode::Usage);
        };
        props.insert(k.trim().to_owned(), v.to_owned());
    }
    match crate::suite::jmx::expand::to_yaml(file, &props) {
        Ok(yaml) => {
            stdout.write_all(yaml.as_bytes())?;
            Ok(ExitCode::Ok)
        }
        Err(diagnostics) => {
            writeln!(stderr, "{diagnostics}")?;
            Ok(ExitCode::Error)
        }
    }
}

fn schema(
    output: Option<PathBuf>,
    results: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> std::io::Result<ExitCode> {
    let text = if results {
        results_schema_text()
    } else {
        schema_text()
    };
    match output {
        None => stdout.write_all(text.as_bytes())?,
        Some(path) => {
            if let Err(e) = crate::report::files::write_atomically(&path, text.as_bytes()) {
                writeln!(stderr, "error: failed to write `{}`: {e}", path.display())?;
                return Ok(ExitCode::Error);
            }
        }
    }
    Ok(ExitCode::Ok)
}

/// The committed form of `schemas/results.schema.json`.
pub fn results_schema_text() -> String {
    let mut text =
        serde_json::to_string_pretty(&crate::report::model::results_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The committed form of `schemas/suite.schema.json`.
pub fn schema_text() -> String {
    let mut text =
        serde_json::to_string_pretty(&crate::suite::raw::suite_schema()).unwrap_or_default();
    text.push('\n');
    text
}
