//! perfgate reads Taurus and Multi Model Server (MMS) suites. Two tables state, file by file,
//! whether a suite validates or which deliberate errors it gets, and why:
//!
//! - [`OWN`]: our own fixtures under `tests/fixtures/compat/`, written in both styles. They run
//!   on every `cargo test`.
//! - [`CORPUS`]: real suites copied from Taurus and MMS, which live outside this repository.
//!   Those tests run only when `PERFGATE_COMPAT_DIR` names the corpus (`.ci/run` sets it and
//!   passes `--ignored`); otherwise cargo reports them as ignored, never as passed.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};

use perfgate::suite::diagnostics::Diagnostic;
use perfgate::suite::discover::{DEFAULT_PATTERN, Discovery, discover};
use perfgate::suite::load::{LoadOptions, load};

/// Criteria of the seed-era MMS suites on labels their plan never sends.
const UNKNOWN_S2: [&str; 3] = [
    "unknown label `s2_fail`",
    "unknown label `s2_p90`",
    "unknown label `s2_avg_rt`",
];
const SCRIPT: &str = "scenario scripts are not supported";
const NO_EXECUTION: &str = "has no `execution`: there is nothing to run";
const CORPUS_NEEDED: &str = "needs the Taurus/MMS corpus: set PERFGATE_COMPAT_DIR (.ci/run does)";

/// (file, global config, env, expected error messages, why).
type Row = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static [&'static str],
    &'static str,
);

const OWN: &[Row] = &[
    (
        "taurus/requests.yml",
        None,
        None,
        &[],
        "requests, JSONPath and body assertions, extractors, query strings, JSON bodies",
    ),
    (
        "taurus/timers_and_stepping.yml",
        None,
        None,
        &[],
        "stepped ramp-up with a throughput cap, every think-time distribution; `locations` only warns",
    ),
    (
        "taurus/included.yml",
        None,
        None,
        &[],
        "`included-configs` brings settings.env and reporting",
    ),
    (
        "taurus/multi_docs.yml",
        None,
        None,
        &[],
        "three YAML documents merged",
    ),
    (
        "taurus/passfail.yml",
        None,
        None,
        &[],
        "the passfail short and long forms",
    ),
    (
        "taurus/env_vars.yml",
        None,
        None,
        &[],
        "settings.env referring to itself; a null entry is the empty string",
    ),
    (
        "taurus/variables_in_numbers.yml",
        None,
        None,
        &[],
        "`${VAR}` in number and duration fields, numeric header values and thresholds",
    ),
    (
        "taurus/scripts.yml",
        None,
        None,
        &[SCRIPT, SCRIPT],
        "Selenium and Locust scripts need their own tools",
    ),
    (
        "mms/infer_single/infer_single.yaml",
        Some("mms/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS: ServerLocalClient, MonitoringCriteria, thresholds from environments/xlarge.yaml",
    ),
    (
        "mms/scale_workers/scale_workers.yaml",
        Some("mms/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS: worker counts; a URL variable from the environment",
    ),
    (
        "mms/jmx_plan/jmx_plan.yaml",
        Some("mms/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios in JMeter plans, imported",
    ),
    (
        "mms-flat/health.yaml",
        Some("mms-flat/common/global_config.yaml"),
        None,
        &["`ServerLocalClient` does not collect `orphans`"],
        "the flat MMS layout; a criterion on a metric its source does not collect is refused",
    ),
];

const CORPUS: &[Row] = &[
    (
        "taurus/all-executors.yml",
        None,
        None,
        &[SCRIPT; 13],
        "Selenium/JUnit/k6/... scripts need their own tools; the `requests:` executions validate",
    ),
    (
        "taurus/apiritif_basic.yml",
        None,
        None,
        &[],
        "requests, JSONPath assertions and extractors",
    ),
    (
        "taurus/body-file.yml",
        None,
        None,
        &["body file `body-file-payload.json` does not exist"],
        "the example's payload file is not part of the corpus",
    ),
    (
        "taurus/controllers.yml",
        None,
        None,
        &[
            "`condition1` is not a condition perfgate evaluates",
            "`foreach` is JMeter logic",
            "`while` is JMeter logic",
        ],
        "JMeter controllers are not run; `if` takes one comparison",
    ),
    (
        "taurus/csv-usage.yml",
        None,
        None,
        &[
            "data source `pages.csv` does not exist",
            "data source `logins.csv` does not exist",
        ],
        "the CSV files are not part of the corpus",
    ),
    (
        "taurus/default-address-trick.yml",
        None,
        None,
        &[],
        "an included scenario takes the includer's default-address",
    ),
    (
        "taurus/dsl-blazedemo.yml",
        None,
        None,
        &[],
        "form bodies and headers",
    ),
    (
        "taurus/env-eval.yml",
        None,
        None,
        &[
            NO_EXECUTION,
            "undefined variable `${TEMP}`",
            "unknown key `toplevel`",
        ],
        "a Taurus unit-test fixture: a null env entry is empty, OS variables are not implicit, no execution",
    ),
    (
        "taurus/jenkins.yml",
        None,
        None,
        &[NO_EXECUTION, "unknown key `interval` in `settings`"],
        "a config fragment; `settings.interval` is not a Taurus key (`check-interval` is)",
    ),
    (
        "taurus/jmeter-test-script.yaml",
        None,
        None,
        &[],
        "a plain URL request",
    ),
    (
        "taurus/module-passfail.yml",
        None,
        None,
        &[NO_EXECUTION, "unknown label `reserve`"],
        "a fragment: its criterion names a label no request has",
    ),
    (
        "taurus/multi-docs.yml",
        None,
        None,
        &[],
        "a YAML and a JSON document merged",
    ),
    (
        "taurus/params_conversion.yml",
        None,
        None,
        &[],
        "query strings and bodies on every method",
    ),
    (
        "taurus/passfail.json",
        None,
        None,
        &[
            NO_EXECUTION,
            "unknown label `label`",
            "unknown label `double label`",
        ],
        "every criterion parses; the fragment has no requests to carry its labels",
    ),
    (
        "taurus/prmctl.yml",
        None,
        None,
        &[
            "`action` is JMeter logic",
            "`action` is JMeter logic",
            "JMeter functions such as `${__Random(0,10)}` are not supported",
        ],
        "JSR223 pause actions and JMeter functions are not run",
    ),
    (
        "taurus/simple-assert.yml",
        None,
        None,
        &[],
        "a regex assertion",
    ),
    (
        "taurus/stepping.yml",
        None,
        None,
        &[],
        "stepped ramp-up with a throughput cap; `locations` only warns",
    ),
    (
        "taurus/three.yml",
        None,
        None,
        &["JMeter functions such as `${__P(csv_file)}` are not supported"],
        "JMeter properties (its sequential executions are supported)",
    ),
    (
        "taurus/timers.yml",
        None,
        None,
        &[],
        "all think-time distributions",
    ),
    (
        "taurus/triple.yml",
        None,
        None,
        &[],
        "three inline scenarios",
    ),
    (
        "mms/master/api_description/api_description.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/batch_and_single_inference/batch_and_single_inference.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/batch_inference/batch_inference.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/examples_local_criteria/examples_local_criteria.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/examples_local_monitoring/examples_local_monitoring.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/examples_remote_criteria/examples_remote_criteria.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "remote ServerAgent monitoring, JMX plans",
    ),
    (
        "mms/master/examples_remote_monitoring/examples_remote_monitoring.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "remote ServerAgent monitoring, JMX plans",
    ),
    (
        "mms/master/examples_starter/examples_starter.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/health_check/health_check.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/inference_multiple_models/inference_multiple_models.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/inference_multiple_worker/inference_multiple_worker.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/inference_single_worker/inference_single_worker.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/list_models/list_models.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/model_description/model_description.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/multiple_inference_and_scaling/multiple_inference_and_scaling.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/register_unregister/register_unregister.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/register_unregister_multiple/register_unregister_multiple.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/scale_down_workers/scale_down_workers.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/master/scale_up_workers/scale_up_workers.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/seed-era/call_jmx.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/seed-era/inference_server_monitoring.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[],
        "remote ServerAgent monitoring, JMX plans",
    ),
    (
        "mms/seed-era/inference_server_monitoring_criteria.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &UNKNOWN_S2,
        "a Taurus defect we refuse: criteria on labels its plan does not have (s2_*) pass silently there",
    ),
    (
        "mms/seed-era/inference_taurus_local_monitoring.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
    (
        "mms/seed-era/inference_taurus_local_monitoring_criteria.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &UNKNOWN_S2,
        "a Taurus defect we refuse: criteria on labels the plan does not have (s2_*) pass silently there",
    ),
    (
        "mms/seed-era/scale_down_workers.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &["`ServerLocalClient` does not collect `orphans`"],
        "a Taurus defect we refuse: a criterion on a metric its source does not collect passes silently there",
    ),
    (
        "mms/seed-era/scale_up_workers.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[],
        "MMS scenarios are JMX plans, imported",
    ),
];

fn own() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compat")
}

/// The corpus named by `PERFGATE_COMPAT_DIR`; a test that needs it and runs without it fails
/// saying so (it runs only with `--ignored`).
fn corpus() -> PathBuf {
    let dir = std::env::var_os("PERFGATE_COMPAT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{CORPUS_NEEDED}"));
    assert!(
        dir.is_dir(),
        "PERFGATE_COMPAT_DIR=`{}` is not a directory",
        dir.display()
    );
    dir
}

/// Loads every row of `table` under `root`; returns what did not go as the table says.
fn check_table(root: &Path, table: &[Row]) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, global, env, expected, why) in table {
        let discovery = Discovery {
            suites: vec![root.join(file)],
            global_configs: global.iter().map(|g| root.join(g)).collect(),
            ..Discovery::default()
        };
        let opts = LoadOptions {
            env: env.map(str::to_owned),
            artifacts_root: "reports/test".into(),
            ..LoadOptions::default()
        };
        let loaded = load(&discovery, &opts);
        let errors: Vec<&Diagnostic> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
        if errors
            .iter()
            .any(|e| e.message.starts_with("invalid YAML") || e.message.starts_with("cannot read"))
        {
            problems.push(format!("{file}: does not load: {errors:?}"));
            continue;
        }
        let mut unmatched: Vec<&str> = expected.to_vec();
        let mut unexpected = Vec::new();
        for e in &errors {
            match unmatched.iter().position(|m| e.message.contains(m)) {
                Some(i) => {
                    unmatched.remove(i);
                }
                None => unexpected.push(e.message.clone()),
            }
        }
        if !unmatched.is_empty() || !unexpected.is_empty() {
            problems.push(format!(
                "{file} ({why}):\n  missing {unmatched:?}\n  unexpected {unexpected:?}"
            ));
        }
        if loaded.suites.len() != usize::from(expected.is_empty()) {
            problems.push(format!(
                "{file}: {} valid suites, expected {}",
                loaded.suites.len(),
                usize::from(expected.is_empty())
            ));
        }
    }
    problems
}

/// Every suite file under `root` (not `.jmx`, docs or layers) has a row in `table`.
fn uncovered(root: &Path, table: &[Row]) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut files = Vec::new();
    walk(root, root, &mut files);
    let layer = |f: &str| f.contains("environments/") || f.ends_with("global_config.yaml");
    files
        .into_iter()
        .filter(|f| !f.ends_with(".jmx") && !f.ends_with(".md") && !layer(f))
        .filter(|f| table.iter().all(|(t, ..)| t != f))
        .collect()
}

#[test]
fn every_own_compat_fixture_gets_its_outcome() {
    let problems = check_table(&own(), OWN);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_own_table_covers_every_fixture() {
    let missing: Vec<String> = uncovered(&own(), OWN)
        .into_iter()
        // Included by included.yml: a layer, not a suite.
        .filter(|f| f != "taurus/base.yml")
        .collect();
    assert!(missing.is_empty(), "not in the OWN table: {missing:?}");
}

/// Searching the fixture folders finds the suites of both MMS layouts, their
/// `global_config.yaml` layers, and no `environments/` file or included layer as a suite.
#[test]
fn discovery_finds_both_mms_layouts_and_their_global_configs() {
    let root = own();
    let inputs = [
        root.join("mms").display().to_string(),
        root.join("mms-flat").display().to_string(),
    ];
    let found = discover(&inputs, DEFAULT_PATTERN, &[]).unwrap();
    let rel = |p: &PathBuf| p.strip_prefix(&root).unwrap().display().to_string();
    assert_eq!(
        found.suites.iter().map(rel).collect::<Vec<_>>(),
        [
            "mms/infer_single/infer_single.yaml",
            "mms/jmx_plan/jmx_plan.yaml",
            "mms/scale_workers/scale_workers.yaml",
            "mms-flat/health.yaml",
        ]
    );
    assert_eq!(
        found.global_configs.iter().map(rel).collect::<Vec<_>>(),
        [
            "mms/global_config.yaml",
            "mms-flat/common/global_config.yaml"
        ]
    );
}

/// Without `-e`, MMS thresholds are undefined, and the message says which environment has them.
#[test]
fn mms_without_its_environment_says_where_the_values_are() {
    let discovery = Discovery {
        suites: vec![own().join("mms/infer_single/infer_single.yaml")],
        global_configs: vec![own().join("mms/global_config.yaml")],
        ..Discovery::default()
    };
    let loaded = load(&discovery, &LoadOptions::default());
    let undefined: Vec<&Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.message.starts_with("undefined variable"))
        .collect();
    assert_eq!(undefined.len(), 5, "{undefined:?}");
    assert!(undefined.iter().all(|d| {
        d.hint
            .as_deref()
            .is_some_and(|h| h.contains("run with `-e xlarge`"))
    }));
}

/// The MMS criteria are compiled (not only parsed): with the environment they carry the
/// thresholds of environments/xlarge.yaml.
#[test]
fn mms_criteria_compile_with_environment_values() {
    let discovery = Discovery {
        suites: vec![own().join("mms/infer_single/infer_single.yaml")],
        global_configs: vec![own().join("mms/global_config.yaml")],
        ..Discovery::default()
    };
    let opts = LoadOptions {
        env: Some("xlarge".into()),
        ..LoadOptions::default()
    };
    let loaded = load(&discovery, &opts);
    let errors: Vec<&Diagnostic> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let names: Vec<&str> = loaded.suites[0]
        .criteria
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "succ of Inference<100%",
            "avg-rt of Inference>290ms",
            "ServerLocalClient/total_processes>3 for 1s",
            "ServerLocalClient/sum_all_file_descriptors>90 for 1s",
            "ServerLocalClient/sum_all_memory_rss>290000000 for 5s",
        ]
    );
    assert!(loaded.suites[0].criteria.iter().all(|c| c.stop && c.fail));
}

#[test]
#[ignore = "needs the Taurus/MMS corpus: set PERFGATE_COMPAT_DIR (.ci/run does)"]
fn every_corpus_file_loads_merges_and_gets_its_outcome() {
    let problems = check_table(&corpus(), CORPUS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
#[ignore = "needs the Taurus/MMS corpus: set PERFGATE_COMPAT_DIR (.ci/run does)"]
fn the_corpus_table_covers_every_corpus_file() {
    let missing = uncovered(&corpus(), CORPUS);
    assert!(missing.is_empty(), "not in the CORPUS table: {missing:?}");
}

/// The real MMS suite without `-e`: the five undefined thresholds name their environment.
#[test]
#[ignore = "needs the Taurus/MMS corpus: set PERFGATE_COMPAT_DIR (.ci/run does)"]
fn corpus_mms_without_its_environment_says_where_the_values_are() {
    let discovery = Discovery {
        suites: vec![
            corpus().join("mms/master/inference_single_worker/inference_single_worker.yaml"),
        ],
        global_configs: vec![corpus().join("mms/master/global_config.yaml")],
        ..Discovery::default()
    };
    let loaded = load(&discovery, &LoadOptions::default());
    let undefined = loaded
        .diagnostics
        .iter()
        .filter(|d| d.message.starts_with("undefined variable"))
        .filter(|d| {
            d.hint
                .as_deref()
                .is_some_and(|h| h.contains("run with `-e xlarge`"))
        })
        .count();
    assert_eq!(undefined, 5, "{:?}", loaded.diagnostics);
}

/// The Multi Model Server regression suites, JMX plans and remote ServerAgent monitoring
/// included, validate as a whole with their environment: `perfgate validate` exits 0.
#[test]
#[ignore = "needs the Taurus/MMS corpus: set PERFGATE_COMPAT_DIR (.ci/run does)"]
fn the_mms_suites_validate_with_their_jmx_plans() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["validate", "-e", "xlarge"])
        .arg(corpus().join("mms/master"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("19 suites valid"), "{text}");
}
