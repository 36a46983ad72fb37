//! Scenarios with `script: plan.jmx` replaced, in the suite's tree, by the plan's thread
//! groups as perfgate scenarios, and the executions that run them by one execution per thread
//! group, with Taurus's rule for the load:
//!
//! - An execution with none of `concurrency`, `ramp-up`, `hold-for`, `iterations` runs each
//!   thread group as the plan says: its threads, ramp-up, loop count (per thread) and, with
//!   the scheduler, duration and startup delay.
//! - Otherwise every `ThreadGroup` gets the execution's load (Taurus's LoadSettingsProcessor):
//!   `concurrency` is shared among the thread groups in proportion to their thread counts
//!   (rounded, at least 1 each; a group keeps its own count when the execution gives none),
//!   `ramp-up` and `hold-for` are the execution's, and `iterations` is each thread's loop
//!   count, as JMeter's; without `iterations` and `hold-for` the plan's loop count stays.
//! - setUp and tearDown thread groups keep their own settings (Taurus does not modify them)
//!   and run before and after the others (`phase: setup` / `teardown`).
//!
//! Properties for `${__P(name,default)}` come from `modules.jmeter.properties`, then the
//! scenario's `properties` (which win); `-o modules.jmeter.properties.NAME=V` sets one.

use std::collections::BTreeMap;
use std::path::Path;

use super::import::{self, Group, Phase};
use crate::suite::diagnostics::{Diagnostic, Diagnostics};
use crate::suite::node::{Entry, Kind, Node, Span};
use crate::suite::source::SourceMap;

/// Expands every JMX scenario of `root` (paths relative to `dir`); returns what the imports
/// approximate.
pub fn expand(
    root: &mut Node,
    dir: &Path,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Vec<String> {
    let mut notes = Vec::new();
    let global = properties(
        root.get("modules")
            .and_then(|m| m.get("jmeter"))
            .and_then(|j| j.get("properties")),
    );
    let Some(scenarios) = root.get("scenarios").and_then(Node::as_map) else {
        return notes;
    };
    let jmx: Vec<(String, Node)> = scenarios
        .iter()
        .filter(|e| {
            e.value
                .get("script")
                .and_then(Node::as_str)
                .is_some_and(|s| s.to_ascii_lowercase().ends_with(".jmx"))
        })
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    for (name, scenario) in jmx {
        let Some(script) = scenario.get("script") else {
            continue;
        };
        let mut props = global.clone();
        props.extend(properties(scenario.get("properties")));
        let Some(imported) = plan(script, dir, &props, sources, diags) else {
            continue;
        };
        notes.extend(imported.notes);
        let mut groups = imported.groups;
        let plan_dir = script
            .as_str()
            .map(|s| dir.join(s))
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| dir.to_path_buf());
        for g in &mut groups {
            run_relative(&mut g.scenario, &plan_dir);
        }
        replace(root, &name, &scenario, &groups, script.span);
    }
    notes
}

/// `perfgate import-jmx`: a plan as the perfgate YAML of its executions and scenarios, with
/// what the import approximates as comments; or the diagnostics, rendered.
pub fn to_yaml(path: &Path, properties: &BTreeMap<String, String>) -> Result<String, String> {
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let name = path
        .file_stem()
        .map_or_else(|| "plan".to_owned(), |s| s.to_string_lossy().into_owned());
    let file = path
        .file_name()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let dir = path.parent().unwrap_or(Path::new("."));
    let id = sources.add_virtual("import-jmx", String::new());
    let span = Span {
        file: id,
        line: 1,
        col: 1,
        len: 1,
    };
    let s = |t: &str| Node::new(Kind::Str(t.to_owned()), span);
    let map = |entries: Vec<(&str, Node)>| {
        Node::new(
            Kind::Map(entries.into_iter().map(|(k, v)| entry(k, v)).collect()),
            span,
        )
    };
    let props = map(properties.iter().map(|(k, v)| (k.as_str(), s(v))).collect());
    let mut root = map(vec![
        (
            "execution",
            Node::new(Kind::Seq(vec![map(vec![("scenario", s(&name))])]), span),
        ),
        (
            "scenarios",
            map(vec![(
                name.as_str(),
                map(vec![("script", s(&file)), ("properties", props)]),
            )]),
        ),
    ]);
    let notes = expand(&mut root, dir, &mut sources, &mut diags);
    if diags.has_errors() {
        return Err(diags
            .iter()
            .map(|d| d.render(&sources))
            .collect::<Vec<_>>()
            .join("\n"));
    }
    let json = serde_json::json!({
        "execution": root.get("execution").map(Node::to_json),
        "scenarios": root.get("scenarios").map(Node::to_json),
    });
    let yaml = serde_saphyr::to_string(&json).map_err(|e| e.to_string())?;
    let mut out = format!("# perfgate scenario imported from {}\n", path.display());
    for note in notes {
        out.push_str(&format!("# approximated: {note}\n"));
    }
    out.push_str(&yaml);
    Ok(out)
}

/// Files a plan names by a relative path are the plan directory's when they are there; else,
/// as Taurus runs JMeter in the artifacts directory, that directory's (a `prepare` command may
/// download them there), looked for when the load starts.
fn run_relative(node: &mut Node, plan_dir: &Path) {
    match &mut node.kind {
        Kind::Map(entries) => {
            for e in entries.iter_mut() {
                if e.key == "path"
                    && let Kind::Str(path) = &mut e.value.kind
                    && !path.is_empty()
                    && !path.contains("${")
                    && Path::new(path.as_str()).is_relative()
                    && !plan_dir.join(path.as_str()).exists()
                {
                    *path = format!("${{TAURUS_ARTIFACTS_DIR}}/{path}");
                } else {
                    run_relative(&mut e.value, plan_dir);
                }
            }
        }
        Kind::Seq(items) => items.iter_mut().for_each(|i| run_relative(i, plan_dir)),
        _ => {}
    }
}

/// A map's scalar values as text.
fn properties(node: Option<&Node>) -> BTreeMap<String, String> {
    node.and_then(Node::as_map)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| Some((e.key.clone(), e.value.scalar_text()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads and imports the plan `script` names; `None` after reporting why not.
fn plan(
    script: &Node,
    dir: &Path,
    props: &BTreeMap<String, String>,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Option<import::Imported> {
    let text = script.as_str()?;
    let path = dir.join(text);
    let content = match std::fs::read_to_string(&path) {
        Ok(c) => c,
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Some(script.span),
                    format!("cannot read the JMeter plan `{}`: {e}", path.display()),
                )
                .with_hint("the path is relative to the suite file"),
            );
            return None;
        }
    };
    let file = sources.add_file(&path, content.clone());
    let tree = match super::xml::read(&content) {
        Ok(t) => t,
        Err(e) => {
            let span = Span {
                file,
                line: e.line.max(1),
                col: 1,
                len: 1,
            };
            diags.push(Diagnostic::error(
                Some(span),
                format!("not a readable JMeter plan: {}", e.message),
            ));
            return None;
        }
    };
    match import::import(&tree, file, props) {
        Ok(imported) if imported.groups.iter().any(|g| g.phase == Phase::Main) => Some(imported),
        Ok(_) => {
            diags.push(Diagnostic::error(
                Some(script.span),
                format!("the JMeter plan `{text}` has no enabled thread group"),
            ));
            None
        }
        Err(found) => {
            for d in found {
                diags.push(d);
            }
            None
        }
    }
}

/// The scenario name of a thread group: the first main one keeps the scenario's name.
fn scenario_name(base: &str, group: &Group, first_main: bool) -> String {
    match group.phase {
        Phase::Main if first_main => base.to_owned(),
        Phase::Main => format!("{base} - {}", group.name),
        Phase::Setup => format!("{base} - setUp {}", group.name),
        Phase::Teardown => format!("{base} - tearDown {}", group.name),
    }
}

fn entry(key: &str, value: Node) -> Entry {
    Entry {
        key: key.to_owned(),
        key_span: value.span,
        value,
    }
}

fn replace(root: &mut Node, name: &str, original: &Node, groups: &[Group], span: Span) {
    let first_main = groups.iter().position(|g| g.phase == Phase::Main);
    let names: Vec<String> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| scenario_name(name, g, Some(i) == first_main))
        .collect();
    // The scenario's own keys (headers, timeout, ...) apply to every thread group, as
    // Taurus adds them to the plan.
    let own: Vec<Entry> = original
        .as_map()
        .unwrap_or_default()
        .iter()
        .filter(|e| !matches!(e.key.as_str(), "script" | "properties"))
        .cloned()
        .collect();
    if let Some(Kind::Map(scenarios)) = root.get_mut("scenarios").map(|s| &mut s.kind) {
        scenarios.retain(|e| e.key != name);
        for (group, scenario_name) in groups.iter().zip(&names) {
            let mut scenario = group.scenario.clone();
            if let Kind::Map(entries) = &mut scenario.kind {
                for e in &own {
                    entries.retain(|x| x.key != e.key);
                    entries.push(e.clone());
                }
            }
            scenarios.push(Entry {
                key: scenario_name.clone(),
                key_span: span,
                value: scenario,
            });
        }
    }
    let Some(Kind::Seq(executions)) = root.get_mut("execution").map(|e| &mut e.kind) else {
        return;
    };
    let mut out = Vec::new();
    for exec in executions.drain(..) {
        if exec.get("scenario").and_then(Node::as_str) != Some(name) {
            out.push(exec);
            continue;
        }
        out.extend(executions_for(&exec, groups, &names));
    }
    *executions = out;
}

/// The load keys an execution gives.
const LOAD_KEYS: [&str; 4] = ["concurrency", "ramp-up", "hold-for", "iterations"];

fn executions_for(exec: &Node, groups: &[Group], names: &[String]) -> Vec<Node> {
    let span = exec.span;
    let int = |n: u64| Node::new(Kind::Int(i64::try_from(n).unwrap_or(i64::MAX)), span);
    let secs = |s: f64| Node::new(Kind::Str(format!("{}ms", (s * 1000.0).round())), span);
    let given = |key: &str| exec.get(key);
    let overrides = LOAD_KEYS.iter().any(|k| given(k).is_some());
    let number = |key: &str| {
        given(key)
            .and_then(Node::scalar_text)
            .and_then(|t| t.parse::<f64>().ok())
    };
    // Taurus shares the execution's concurrency among the thread groups by their sizes.
    let mains: Vec<&Group> = groups.iter().filter(|g| g.phase == Phase::Main).collect();
    let total: u32 = mains.iter().map(|g| g.load.threads.max(1)).sum();
    let share = |g: &Group| -> Option<u32> {
        let c = number("concurrency")?;
        let own = f64::from(g.load.threads.max(1));
        Some(((c * own / f64::from(total.max(1))).round() as u32).max(1))
    };
    let others: Vec<Entry> = exec
        .as_map()
        .unwrap_or_default()
        .iter()
        .filter(|e| e.key != "scenario" && !LOAD_KEYS.contains(&e.key.as_str()))
        .cloned()
        .collect();
    let mut out = Vec::new();
    let mut first_main = true;
    for (group, name) in groups.iter().zip(names) {
        let mut entries = vec![entry("scenario", Node::new(Kind::Str(name.clone()), span))];
        let load = &group.load;
        let main = group.phase == Phase::Main;
        if main && overrides {
            let users = share(group).unwrap_or(load.threads.max(1));
            entries.push(entry("concurrency", int(u64::from(users))));
            for key in ["ramp-up", "hold-for"] {
                if let Some(v) = given(key) {
                    entries.push(entry(key, v.clone()));
                }
            }
            // JMeter's loop count is per thread; perfgate's iterations are the total.
            let loops = number("iterations")
                .map(|n| n.max(0.0) as u64)
                .or(given("hold-for").is_none().then_some(load.loops).flatten());
            if let Some(loops) = loops {
                entries.push(entry(
                    "iterations",
                    int(loops.saturating_mul(u64::from(users))),
                ));
            }
        } else {
            entries.push(entry("concurrency", int(u64::from(load.threads.max(1)))));
            if load.ramp_up > 0.0 {
                entries.push(entry("ramp-up", secs(load.ramp_up)));
            }
            if let Some(d) = load.duration {
                entries.push(entry("hold-for", secs((d - load.ramp_up).max(0.0))));
            }
            if let Some(loops) = load.loops {
                entries.push(entry(
                    "iterations",
                    int(loops.saturating_mul(u64::from(load.threads.max(1)))),
                ));
            }
            if let Some(delay) = load.delay.filter(|d| *d > 0.0) {
                entries.push(entry("delay", secs(delay)));
            }
        }
        if !main {
            entries.push(entry(
                "phase",
                Node::new(Kind::Str(group.phase.name().to_owned()), span),
            ));
        } else {
            // Criteria and other settings of the execution go with its first thread group.
            let keep = if first_main {
                others.clone()
            } else {
                others
                    .iter()
                    .filter(|e| e.key != "criteria")
                    .cloned()
                    .collect()
            };
            entries.extend(keep);
            first_main = false;
        }
        out.push(Node::new(Kind::Map(entries), span));
    }
    out
}
