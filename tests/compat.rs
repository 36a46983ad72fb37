//! Every file of `../shared/compat` loads and merges; this table states, file by file, whether
//! it validates or which deliberate errors it gets, and why.

use std::path::{Path, PathBuf};

use perfgate::suite::diagnostics::Diagnostic;
use perfgate::suite::discover::Discovery;
use perfgate::suite::load::{LoadOptions, load};

const JMX: &str = "JMX plans are not supported yet";
const AGENT: &str = "Taurus `server-agent` monitoring is not supported";
const SCRIPT: &str = "scenario scripts are not supported";
const NO_EXECUTION: &str = "has no `execution`: there is nothing to run";

/// (file under compat/, global config, env, expected error messages, why).
type Row = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static [&'static str],
    &'static str,
);

const TABLE: &[Row] = &[
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
            "`if` is JMeter logic",
            "`foreach` is JMeter logic",
            "`while` is JMeter logic",
        ],
        "JMeter controllers are not run",
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
            "undefined variable `${BZT_ENV_TEST_UNSET}`",
            "undefined variable `${TEMP}`",
            "unknown key `toplevel`",
        ],
        "a Taurus unit-test fixture: a null env entry unsets, OS variables are not implicit, no execution",
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
        &[
            "JMeter functions such as `${__P(csv_file)}` are not supported",
            "`modules.local.sequential` is not supported",
        ],
        "JMeter properties and sequential executions",
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
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/batch_and_single_inference/batch_and_single_inference.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/batch_inference/batch_inference.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/examples_local_criteria/examples_local_criteria.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/examples_local_monitoring/examples_local_monitoring.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/examples_remote_criteria/examples_remote_criteria.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX, AGENT],
        "JMX, and remote ServerAgent monitoring",
    ),
    (
        "mms/master/examples_remote_monitoring/examples_remote_monitoring.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX, AGENT],
        "JMX, and remote ServerAgent monitoring",
    ),
    (
        "mms/master/examples_starter/examples_starter.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/health_check/health_check.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/inference_multiple_models/inference_multiple_models.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/inference_multiple_worker/inference_multiple_worker.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/inference_single_worker/inference_single_worker.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/list_models/list_models.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/model_description/model_description.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/multiple_inference_and_scaling/multiple_inference_and_scaling.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/register_unregister/register_unregister.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/register_unregister_multiple/register_unregister_multiple.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/scale_down_workers/scale_down_workers.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/master/scale_up_workers/scale_up_workers.yaml",
        Some("mms/master/global_config.yaml"),
        Some("xlarge"),
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/seed-era/call_jmx.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/seed-era/inference_server_monitoring.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[JMX, AGENT],
        "JMX, and remote ServerAgent monitoring",
    ),
    (
        "mms/seed-era/inference_server_monitoring_criteria.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[JMX, AGENT],
        "JMX, and remote ServerAgent monitoring",
    ),
    (
        "mms/seed-era/inference_taurus_local_monitoring.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/seed-era/inference_taurus_local_monitoring_criteria.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
    (
        "mms/seed-era/scale_down_workers.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[JMX, "`ServerLocalClient` does not collect `orphans`"],
        "a Taurus defect we refuse: a criterion on a metric its source does not collect passes silently there",
    ),
    (
        "mms/seed-era/scale_up_workers.yaml",
        Some("mms/seed-era/common/global_config.yaml"),
        None,
        &[JMX],
        "MMS scenarios are JMX plans",
    ),
];

fn compat() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/compat")
}

#[test]
fn every_compat_file_loads_merges_and_gets_its_outcome() {
    let mut problems = Vec::new();
    for (file, global, env, expected, why) in TABLE {
        let discovery = Discovery {
            suites: vec![compat().join(file)],
            global_configs: global.iter().map(|g| compat().join(g)).collect(),
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
        assert_eq!(
            loaded.suites.len(),
            usize::from(expected.is_empty()),
            "{file}"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_table_covers_every_compat_file() {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path.strip_prefix(compat()).unwrap().display().to_string());
            }
        }
    }
    let mut files = Vec::new();
    walk(&compat(), &mut files);
    let layer = |f: &str| f.contains("environments/") || f.ends_with("global_config.yaml");
    for file in files
        .iter()
        .filter(|f| !f.ends_with(".jmx") && !f.ends_with(".md") && !layer(f))
    {
        assert!(
            TABLE.iter().any(|(t, ..)| t == file),
            "{file} is not in the compat table"
        );
    }
}

/// Without `-e`, MMS thresholds are undefined, and the message says which environment has them.
#[test]
fn mms_without_its_environment_says_where_the_values_are() {
    let discovery = Discovery {
        suites: vec![
            compat().join("mms/master/inference_single_worker/inference_single_worker.yaml"),
        ],
        global_configs: vec![compat().join("mms/master/global_config.yaml")],
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

/// The MMS criteria are compiled too (not only parsed): with the environment they yield the
/// thresholds of environments/xlarge.yaml.
#[test]
fn mms_criteria_compile_with_environment_values() {
    let discovery = Discovery {
        suites: vec![
            compat().join("mms/master/inference_single_worker/inference_single_worker.yaml"),
        ],
        global_configs: vec![compat().join("mms/master/global_config.yaml")],
    };
    let opts = LoadOptions {
        env: Some("xlarge".into()),
        ..LoadOptions::default()
    };
    let loaded = load(&discovery, &opts);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.clone())
        .collect();
    // Only the JMX scenario is wrong: the five criteria (two short, three monitoring) are fine.
    assert_eq!(
        errors,
        ["JMX plans are not supported yet: `inference_single_worker.jmx`"]
    );
}
