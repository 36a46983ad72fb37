//! From discovered files to validated suites: the front half of the pipeline.
//!
//! [`load`] builds each suite from its layers in DESIGN §4.1 order (global configs and
//! `--config` files, the suite, its `included-configs`, `environments/<env>.yaml`, `-o`),
//! expands shorthands, interpolates `${NAME}`, deserializes into the raw types and validates.
//! Every file is loaded even when an earlier one fails, so all problems show at once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::de::{DeContext, from_node};
use super::diagnostics::{Diagnostic, Diagnostics};
use super::discover::Discovery;
use super::interpolate::{BUILTIN_NAMES, Builtins, Variables, interpolate};
use super::merge::{apply_override, merge, split_override};
use super::model::Suite;
use super::node::{FileId, Kind, Node, Span, parse_documents};
use super::raw::{RawSuite, normalize};
use super::source::SourceMap;
use super::validate::{Context, validate};

/// What the command line adds to every suite.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `-c/--config` files, merged before each suite.
    pub configs: Vec<PathBuf>,
    /// `-e/--env NAME`: merge `environments/NAME.yaml` beside each suite.
    pub env: Option<String>,
    /// `-o KEY=VALUE` overrides, applied last.
    pub overrides: Vec<String>,
    /// The run's artifacts directory; `${ARTIFACTS_DIR}` is `<this>/<suite name>`.
    pub artifacts_root: PathBuf,
    /// This binary, for `${PERFGATE}`.
    pub perfgate: PathBuf,
}

/// Every suite that validated, and everything found wrong or worth a warning.
#[derive(Debug, Default)]
pub struct Loaded {
    pub suites: Vec<Suite>,
    pub diagnostics: Diagnostics,
    pub sources: SourceMap,
    /// Suite files with at least one error.
    pub failed: Vec<PathBuf>,
    /// Values no output may show, of every suite (valid or not): `settings.secrets` and
    /// sensitive header values. Diagnostics quote the user's lines, so they are masked too.
    pub secret_values: Vec<String>,
}

/// What a worker found for one suite.
type Outcome = (PathBuf, Option<Suite>, Diagnostics, Vec<String>);

/// Loads and validates every discovered suite.
pub fn load(discovery: &Discovery, opts: &LoadOptions) -> Loaded {
    let mut loaded = Loaded::default();
    let mut base_layers = Vec::new();
    for path in discovery.global_configs.iter().chain(&opts.configs) {
        let mut diags = Diagnostics::default();
        let mut root = empty_map(&mut loaded.sources, path);
        load_with_includes(
            path,
            None,
            &mut root,
            &mut vec![],
            &mut HashSet::new(),
            &mut loaded.sources,
            &mut diags,
        );
        loaded.diagnostics.extend(diags.iter().cloned());
        base_layers.push(root);
    }
    // A file that another suite includes is a layer, not a suite of its own, unless it was
    // named on the command line.
    let layers = layers(&discovery.suites);
    let canonical = |p: &PathBuf| p.canonicalize().unwrap_or_else(|_| p.clone());
    let named: HashSet<PathBuf> = discovery.named.iter().map(canonical).collect();
    let suites: Vec<PathBuf> = discovery
        .suites
        .iter()
        .filter(|p| {
            let p = canonical(p);
            named.contains(&p) || !layers.contains(&p)
        })
        .cloned()
        .collect();
    let names = suite_names(&suites);
    let jobs: Vec<(&PathBuf, String)> = suites.iter().zip(names).collect();
    // Suites are independent: load them on every core, each worker with its own copy of the
    // shared sources, then merge results back in suite order.
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len())
        .max(1);
    let chunk = jobs.len().div_ceil(workers).max(1);
    let shared = loaded.sources.len();
    let results: Vec<(Vec<Outcome>, SourceMap)> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                let mut sources = loaded.sources.clone();
                let base_layers = &base_layers;
                scope.spawn(move || {
                    let outcomes = part
                        .iter()
                        .map(|(path, name)| {
                            let mut diags = Diagnostics::default();
                            let mut secrets = Vec::new();
                            let suite = load_suite(
                                path,
                                name.clone(),
                                base_layers,
                                opts,
                                &mut sources,
                                &mut diags,
                                &mut secrets,
                            );
                            ((*path).clone(), suite, diags, secrets)
                        })
                        .collect();
                    (outcomes, sources)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a suite loader panicked"))
            .collect()
    });
    for (outcomes, sources) in results {
        let offset = loaded.sources.absorb(sources, shared);
        for (path, suite, diags, secrets) in outcomes {
            loaded.secret_values.extend(secrets);
            let had_errors = diags.has_errors();
            loaded
                .diagnostics
                .extend(diags.iter().cloned().map(|mut d| {
                    if let Some(span) = &mut d.span
                        && span.file.0 as usize >= shared
                    {
                        span.file.0 = u32::try_from(i64::from(span.file.0) + offset)
                            .expect("file ids fit in u32");
                    }
                    d
                }));
            if had_errors || suite.is_none() {
                loaded.failed.push(path);
            }
            loaded.suites.extend(suite);
        }
    }
    loaded
}

/// Canonical paths of the files that are layers: reached through `included-configs` from a
/// suite that nothing includes. Files that only include each other (a cycle with no way in)
/// stay suites, so loading reports the cycle instead of finding nothing to run.
fn layers(suites: &[PathBuf]) -> HashSet<PathBuf> {
    let mut edges: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
    let mut queue: Vec<PathBuf> = suites.to_vec();
    while let Some(path) = queue.pop() {
        let from = path.canonicalize().unwrap_or_else(|_| path.clone());
        if edges.contains_key(&from) {
            continue;
        }
        let targets = includes_of(&path);
        queue.extend(targets.iter().cloned());
        edges.insert(
            from,
            targets
                .iter()
                .filter_map(|t| t.canonicalize().ok())
                .collect(),
        );
    }
    let included: HashSet<&PathBuf> = edges.values().flatten().collect();
    let mut layers = HashSet::new();
    let mut stack: Vec<PathBuf> = suites
        .iter()
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .filter(|p| !included.contains(p))
        .flat_map(|root| edges.get(&root).cloned().unwrap_or_default())
        .collect();
    while let Some(layer) = stack.pop() {
        if layers.insert(layer.clone()) {
            stack.extend(edges.get(&layer).cloned().unwrap_or_default());
        }
    }
    layers
}

/// The files `path` names in its `included-configs`, relative to its folder.
fn includes_of(path: &Path) -> Vec<PathBuf> {
    let Ok(text) = super::source::read_suite_file(path) else {
        return Vec::new();
    };
    if !text.contains("included-configs") {
        return Vec::new();
    }
    let Ok(docs) = parse_documents(&text, FileId(u32::MAX)) else {
        return Vec::new();
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut included = Vec::new();
    for doc in &docs {
        let entries = doc.get("included-configs");
        let list = entries
            .and_then(Node::as_seq)
            .map(<[Node]>::to_vec)
            .or_else(|| entries.map(|e| vec![e.clone()]));
        for item in list.into_iter().flatten() {
            if let Some(rel) = item.as_str() {
                included.push(base.join(rel));
            }
        }
    }
    included
}

fn empty_map(sources: &mut SourceMap, path: &Path) -> Node {
    let file = sources.add_virtual(path.display().to_string(), String::new());
    Node::new(
        Kind::Map(Vec::new()),
        Span {
            file,
            line: 1,
            col: 1,
            len: 1,
        },
    )
}

fn load_suite(
    path: &Path,
    name: String,
    base_layers: &[Node],
    opts: &LoadOptions,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
    secrets: &mut Vec<String>,
) -> Option<Suite> {
    let mut root = empty_map(sources, path);
    for layer in base_layers {
        merge(&mut root, layer.clone());
    }
    let mut own = Diagnostics::default();
    let mut suite_root = empty_map(sources, path);
    load_with_includes(
        path,
        None,
        &mut suite_root,
        &mut vec![],
        &mut HashSet::new(),
        sources,
        &mut own,
    );
    if own.has_errors() {
        diags.extend(own.iter().cloned());
        return None;
    }
    diags.extend(own.iter().cloned());
    if suite_root.as_map().is_some_and(<[_]>::is_empty) {
        diags.push(
            Diagnostic::error(None, format!("`{}` is empty", path.display()))
                .with_hint("a suite declares at least `execution` and `scenarios`"),
        );
        return None;
    }
    merge(&mut root, suite_root);
    let suite_dir = path.parent().unwrap_or(Path::new("."));
    if let Some(env) = &opts.env {
        let env_path = suite_dir.join("environments").join(format!("{env}.yaml"));
        if env_path.is_file() {
            load_with_includes(
                &env_path,
                None,
                &mut root,
                &mut vec![],
                &mut HashSet::new(),
                sources,
                diags,
            );
        } else {
            diags.push(Diagnostic::warning(
                None,
                format!(
                    "`-e {env}`: there is no {} for `{}`",
                    env_path.display(),
                    path.display()
                ),
            ));
        }
    }
    for text in &opts.overrides {
        apply_cli_override(&mut root, text, sources, diags);
    }
    normalize(&mut root);
    let before = diags.error_count();
    crate::suite::jmx::expand::expand(&mut root, suite_dir, sources, diags);
    let plans_failed = diags.error_count() > before;

    let mut vars = Variables::from_settings(&root, &|name| std::env::var(name).ok());
    let ports = allocate_ports(&root);
    vars.add_builtins(&Builtins {
        artifacts_dir: opts.artifacts_root.join(&name).display().to_string(),
        perfgate: opts.perfgate.display().to_string(),
        ports: ports.clone(),
    });
    interpolate(&mut root, &vars);
    secrets.extend(secret_values(&root, &vars));

    let ctx = DeContext::new(crate::suite::raw::ignorable_key);
    let raw: Option<RawSuite> = from_node(&root, &ctx);
    diags.extend(ctx.into_diagnostics());
    let raw = raw?;
    let mut known: BTreeSet<String> = vars.names().map(str::to_owned).collect();
    known.extend(BUILTIN_NAMES.iter().map(|s| (*s).to_owned()));
    known.extend(ports.iter().map(|(n, _)| n.clone()));
    let artifacts_dir = opts.artifacts_root.join(&name);
    let cx = Context {
        artifacts_dir,
        name,
        path: path.to_owned(),
        sources,
        effective: &root,
        known_variables: known,
        environments: environments_beside(suite_dir),
        ports,
    };
    let suite = validate(&raw, &cx, diags);
    // A plan that could not be imported leaves its scenario out: the suite cannot run.
    suite.filter(|_| !plans_failed)
}

/// `-o a.b=VALUE`: VALUE is YAML, located in a virtual source named after the option.
fn apply_cli_override(
    root: &mut Node,
    text: &str,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) {
    let file = sources.add_virtual(format!("-o {text}"), text.to_owned());
    let whole = Span {
        file,
        line: 1,
        col: 1,
        len: u32::try_from(text.chars().count()).unwrap_or(1),
    };
    let (path, value_text) = match split_override(text) {
        Ok(parts) => parts,
        Err(e) => {
            diags.push(
                Diagnostic::error(whole, e.to_string())
                    .with_hint("write -o path.to.key=VALUE, e.g. -o execution.0.concurrency=5"),
            );
            return;
        }
    };
    let offset = u32::try_from(text.len() - value_text.len()).unwrap_or(0);
    let value_span = Span {
        col: 1 + offset,
        len: u32::try_from(value_text.chars().count().max(1)).unwrap_or(1),
        ..whole
    };
    let value = match parse_documents(&format!("v: {value_text}"), file) {
        Ok(mut docs) => docs.pop().and_then(|d| d.get("v").cloned()).map_or(
            Node::new(Kind::Null, value_span),
            |v| Node {
                span: value_span,
                ..v
            },
        ),
        Err(_) => Node::new(Kind::Str(value_text.to_owned()), value_span),
    };
    let value = relocate(value, value_span);
    if let Err(e) = apply_override(root, path, value) {
        diags.push(Diagnostic::error(
            whole,
            format!("cannot apply override: {e}"),
        ));
    }
}

/// Points every node of an override value at the value on the command line.
fn relocate(mut node: Node, span: Span) -> Node {
    node.span = span;
    match &mut node.kind {
        Kind::Seq(items) => {
            for item in items.iter_mut() {
                *item = relocate(item.clone(), span);
            }
        }
        Kind::Map(entries) => {
            for e in entries.iter_mut() {
                e.key_span = span;
                e.value = relocate(e.value.clone(), span);
            }
        }
        _ => {}
    }
    node
}

/// Reads `path`, merges its documents into `root`, then its `included-configs` (each once,
/// relative to the including file; a cycle is an error).
fn load_with_includes(
    path: &Path,
    referenced_at: Option<Span>,
    root: &mut Node,
    stack: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    if let Some(start) = stack.iter().position(|p| *p == canonical) {
        let chain: Vec<String> = stack[start..]
            .iter()
            .chain(std::iter::once(&canonical))
            .map(|p| {
                p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .collect();
        diags.push(
            Diagnostic::error(
                referenced_at,
                format!("include cycle: {}", chain.join(" → ")),
            )
            .with_hint("remove one of the `included-configs` entries that closes the cycle"),
        );
        return;
    }
    if !seen.insert(canonical.clone()) {
        return;
    }
    let text = match super::source::read_suite_file(path) {
        Ok(text) => text,
        Err(e) => {
            let what = if referenced_at.is_some() {
                "included config"
            } else {
                "file"
            };
            let error = Diagnostic::error(
                referenced_at,
                format!("cannot read {what} `{}`: {}", path.display(), io_reason(&e)),
            );
            diags.push(match (referenced_at.is_some(), e.kind()) {
                (true, std::io::ErrorKind::NotFound) => {
                    error.with_hint("included paths are relative to the file that includes them")
                }
                _ => error,
            });
            return;
        }
    };
    let file = sources.add_file(path, text);
    let docs = match parse_documents(&sources.get(file).text, file) {
        Ok(docs) => docs,
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Span {
                        file,
                        line: e.line,
                        col: e.col,
                        len: 1,
                    },
                    format!("invalid YAML: {}", strip_location(&e.message)),
                )
                .with_hint(if e.message.contains("flow") {
                    "inside `[...]` or `{...}`, quote values that contain `[`, `]`, `{`, `}`, `,` or `: `, e.g. '$.outputs[0]'"
                } else {
                    "check indentation and quoting near this line"
                }),
            );
            return;
        }
    };
    stack.push(canonical);
    let mut includes = Vec::new();
    for mut doc in docs {
        if let Kind::Map(entries) = &mut doc.kind {
            if let Some(i) = entries.iter().position(|e| e.key == "included-configs") {
                let entry = entries.remove(i);
                match entry.value.kind {
                    Kind::Seq(items) => includes.extend(items),
                    Kind::Str(_) => includes.push(entry.value),
                    _ => diags.push(Diagnostic::error(
                        entry.value.span,
                        "`included-configs` is a list of file paths",
                    )),
                }
            }
        } else {
            diags.push(
                Diagnostic::error(
                    doc.span,
                    format!(
                        "a suite document is a map of sections, found {}",
                        doc.type_name()
                    ),
                )
                .with_hint("start the document with keys such as `execution:` and `scenarios:`"),
            );
            continue;
        }
        merge(root, doc);
    }
    let base = path.parent().unwrap_or(Path::new("."));
    for include in includes {
        let Some(rel) = include.as_str() else {
            diags.push(Diagnostic::error(
                include.span,
                "`included-configs` entries are file paths",
            ));
            continue;
        };
        load_with_includes(
            &base.join(rel),
            Some(include.span),
            root,
            stack,
            seen,
            sources,
            diags,
        );
    }
    stack.pop();
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "not UTF-8 text".into(),
        _ => e.to_string(),
    }
}

/// serde-saphyr appends "at line X, column Y" (the diagnostic shows the location itself) and
/// advice about its own options, which is not the user's business.
fn strip_location(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    match message.strip_prefix("duplicate mapping key: ") {
        Some(rest) => {
            let key = rest.split(',').next().unwrap_or(rest).trim();
            format!(
                "duplicate key `{key}`: a key appears once per map (merge the two, or override it in a later `---` document)"
            )
        }
        None => message.to_owned(),
    }
}

/// The values of a merged suite that no output may show: those of the names under
/// `settings.secrets`, and of sensitive headers anywhere under `scenarios`.
fn secret_values(root: &Node, vars: &Variables) -> Vec<String> {
    fn headers(node: &Node, out: &mut Vec<String>) {
        match &node.kind {
            Kind::Map(entries) => {
                for e in entries {
                    let sensitive = crate::report::redact::SENSITIVE_HEADERS
                        .contains(&e.key.to_ascii_lowercase().as_str());
                    match (&e.value.kind, sensitive) {
                        (Kind::Str(v), true) => out.push(v.clone()),
                        _ => headers(&e.value, out),
                    }
                }
            }
            Kind::Seq(items) => items.iter().for_each(|i| headers(i, out)),
            _ => {}
        }
    }
    let mut out: Vec<String> = root
        .get("settings")
        .and_then(|s| s.get("secrets"))
        .and_then(Node::as_seq)
        .into_iter()
        .flatten()
        .filter_map(Node::as_str)
        .filter_map(|name| {
            vars.get(name)
                .map(str::to_owned)
                .or_else(|| std::env::var(name).ok())
        })
        .collect();
    if let Some(scenarios) = root.get("scenarios") {
        headers(scenarios, &mut out);
    }
    out.retain(|v| !v.is_empty() && !v.contains("${"));
    out
}

/// `settings.port-range` when none is given: below the kernel's ephemeral range (32768-60999
/// on Linux), which outgoing connections use, and below 32767, which MMS refuses.
pub const DEFAULT_PORT_RANGE: (u16, u16) = (20000, 32766);

/// Reads `LOW-HIGH`, with `1024 <= LOW <= HIGH`.
pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let (low, high) = text.split_once('-')?;
    let (low, high): (u16, u16) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
    (1024 <= low && low <= high).then_some((low, high))
}

/// One free loopback port per name in `settings.ports`, from `settings.port-range`. Picks
/// start at a point that differs per process and per call, so suites loaded together, and
/// perfgate runs side by side, rarely try the same port.
fn allocate_ports(root: &Node) -> Vec<(String, u16)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CURSOR: AtomicU32 = AtomicU32::new(0);
    let settings = root.get("settings");
    let Some(names) = settings.and_then(|s| s.get("ports")).and_then(Node::as_seq) else {
        return Vec::new();
    };
    let (low, high) = settings
        .and_then(|s| s.get("port-range"))
        .and_then(Node::as_str)
        .and_then(parse_port_range)
        .unwrap_or(DEFAULT_PORT_RANGE);
    let span = u32::from(high - low) + 1;
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    let mut out = Vec::new();
    for name in names.iter().filter_map(Node::as_str) {
        let port = (0..span.min(4096)).find_map(|_| {
            let offset = seed.wrapping_add(CURSOR.fetch_add(1, Ordering::Relaxed)) % span;
            let port = low + u16::try_from(offset).ok()?;
            let taken = out.iter().any(|(_, p)| *p == port);
            (!taken && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()).then_some(port)
        });
        if let Some(port) = port {
            out.push((name.to_owned(), port));
        }
    }
    out
}

/// `environments/*.yaml` beside a suite and the `settings.env` names each declares.
fn environments_beside(dir: &Path) -> Vec<(String, BTreeSet<String>)> {
    let Ok(entries) = std::fs::read_dir(dir.join("environments")) else {
        return Vec::new();
    };
    let mut envs: Vec<(String, BTreeSet<String>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .filter_map(|p| {
            let text = super::source::read_suite_file(&p).ok()?;
            let names = parse_documents(&text, FileId(u32::MAX))
                .ok()?
                .iter()
                .filter_map(|d| {
                    d.get("settings")?
                        .get("env")?
                        .as_map()
                        .map(|m| m.iter().map(|e| e.key.clone()).collect::<Vec<_>>())
                })
                .flatten()
                .collect();
            Some((p.file_stem()?.to_string_lossy().into_owned(), names))
        })
        .collect();
    envs.sort();
    envs
}

/// File stems, made unique with their parent folder when two suites share a stem.
fn suite_names(paths: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut names: Vec<String> = paths
        .iter()
        .map(|p| {
            let name = stem(p);
            if paths.iter().filter(|q| stem(q) == name).count() > 1 {
                let parent = p
                    .parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{parent}-{name}")
            } else {
                name
            }
        })
        .collect();
    // Same file name in same-named folders (a/x/s.yaml, b/x/s.yaml): number the later ones.
    let mut seen = HashMap::<String, usize>::new();
    for name in &mut names {
        let n = seen.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            *name = format!("{name}-{n}");
        }
    }
    names
}

#[cfg(test)]
mod port_tests {
    use super::*;

    fn root(yaml: &str) -> Node {
        parse_documents(yaml, FileId(0)).unwrap().remove(0)
    }

    #[test]
    fn ports_come_from_below_the_ephemeral_range_unless_told() {
        let ports = allocate_ports(&root("settings: {ports: [A, B, C]}"));
        assert_eq!(ports.len(), 3);
        let (low, high) = DEFAULT_PORT_RANGE;
        assert!(
            ports.iter().all(|(_, p)| (low..=high).contains(p)),
            "{ports:?}"
        );
        assert!(high < 32767, "MMS refuses 32767 and up");
        let mut distinct: Vec<u16> = ports.iter().map(|(_, p)| *p).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        let ports = allocate_ports(&root("settings: {ports: [A], port-range: 41000-41010}"));
        assert!((41000..=41010).contains(&ports[0].1), "{ports:?}");
        assert_eq!(parse_port_range("2000-1000"), None);
        assert_eq!(parse_port_range("80-90"), None);
        assert_eq!(parse_port_range("x"), None);
    }
}
