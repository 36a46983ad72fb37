//! JMeter plans: imported and run against `perfgate demo-server`; properties, Taurus's load
//! rule, setUp/tearDown order, unsupported and disabled elements, `import-jmx`.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod helpers;

use std::path::Path;

use serde_json::Value;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jmx")
        .join(name)
}

/// A suite beside copies of the fixtures, started with a demo server; returns the dir.
fn suite_dir(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["every_element.jmx", "models.csv"] {
        std::fs::copy(fixture(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("s.yaml"), yaml).unwrap();
    dir
}

const SERVER: &str = r#"
settings: {ports: [PORT]}
services:
  - module: server
    command: ["${PERFGATE}", "demo-server", "--port", "${PORT}"]
    ready: {http: "http://127.0.0.1:${PORT}/v2/health/ready", timeout: 30s}
modules:
  jmeter:
    properties: {port: "${PORT}", kind: global}
"#;

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("out/results.json")).unwrap()).unwrap()
}

fn label<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["suites"][0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == name)
        .unwrap_or_else(|| panic!("no label {name}: {r}"))
}

/// Every supported element, run: the plan's own thread groups (2 threads × 3 loops), a
/// transaction around a request and a loop of two, data from CSV, extractors feeding the next
/// URL, an assertion, headers; setUp before and tearDown after the main load.
#[test]
fn a_plan_with_every_element_runs_as_jmeter_would() {
    let yaml = format!(
        "{SERVER}execution: [{{scenario: plan}}]\nscenarios:\n  plan:\n    script: every_element.jmx\n    properties: {{kind: scenario}}\n"
    );
    let dir = suite_dir(&yaml);
    let (code, out) = helpers::perfgate_in(dir.path(), &["run", "s.yaml", "-a", "out"]);
    assert_eq!(code, 0, "{out}");
    let r = results(dir.path());
    // 2 threads × 3 loops; each iteration one Metadata and two Inference requests.
    assert_eq!(label(&r, "Metadata")["hits"], 6);
    assert_eq!(label(&r, "Inference")["hits"], 12);
    assert_eq!(
        label(&r, "Inference")["fail"],
        0,
        "the extracted model name made a valid URL"
    );
    assert_eq!(label(&r, "Infer flow")["hits"], 6);
    // If controllers: the extracted platform decides.
    assert_eq!(label(&r, "Demo live")["hits"], 6);
    assert!(
        r["suites"][0]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["label"] != "Never sent" || l["hits"] == 0)
    );
    assert_eq!(label(&r, "Setup ready")["hits"], 1);
    assert_eq!(label(&r, "Teardown live")["hits"], 1);
    // setUp ran first (it pauses 1.1 s), tearDown last.
    let timeline = r["suites"][0]["timeline"].as_array().unwrap();
    let seconds = |name: &str| -> Vec<u64> {
        timeline
            .iter()
            .filter(|t| t["label"] == name && t["hits"].as_u64() > Some(0))
            .map(|t| t["second"].as_u64().unwrap())
            .collect()
    };
    let setup = *seconds("Setup ready").iter().max().unwrap();
    let main_first = *seconds("Metadata").iter().min().unwrap();
    let main_last = *seconds("Inference").iter().max().unwrap();
    let teardown = *seconds("Teardown live").iter().min().unwrap();
    assert!(
        setup < main_first,
        "setUp {setup} before the load {main_first}"
    );
    assert!(
        main_last <= teardown,
        "tearDown {teardown} after the load {main_last}"
    );
}

/// Properties: the scenario's win over `modules.jmeter.properties`, `-o` over both; a
/// property without a default that nobody sets is an error naming it and its line.
#[test]
fn property_resolution_order() {
    let yaml = format!(
        "{SERVER}execution: [{{scenario: plan}}]\nscenarios:\n  plan:\n    script: every_element.jmx\n    properties: {{kind: scenario}}\n"
    );
    let dir = suite_dir(&yaml);
    let list = |extra: &[&str]| -> Value {
        let mut args = vec!["list", "--format", "json", "s.yaml"];
        args.extend_from_slice(extra);
        let (code, out) = helpers::perfgate_in(dir.path(), &args);
        assert_eq!(code, 0, "{out}");
        let json = out.find('[').map(|i| &out[i..]).unwrap();
        serde_json::from_str(json.lines().collect::<Vec<_>>().join("\n").trim()).unwrap()
    };
    let kind = |v: &Value| -> String {
        v[0]["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "plan")
            .map(|s| {
                s["variables"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|kv| kv[0] == "kind")
                    .unwrap()[1]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .unwrap()
    };
    assert_eq!(kind(&list(&[])), "scenario");
    assert_eq!(
        kind(&list(&["-o", "scenarios.plan.properties.kind=cli"])),
        "cli"
    );
    // Without the port property: an error at the plan's line.
    std::fs::write(
        dir.path().join("s.yaml"),
        yaml.replace("port: \"${PORT}\", ", ""),
    )
    .unwrap();
    let (code, out) = helpers::perfgate_in(dir.path(), &["validate", "s.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("every_element.jmx:27:"), "{out}");
    assert!(
        out.contains("the JMeter property `port` is not set"),
        "{out}"
    );
}

/// Taurus's rule: an execution with load settings overrides the main thread groups
/// (concurrency shared by their sizes, iterations per thread), never setUp/tearDown; without
/// them the plan's own settings apply.
#[test]
fn the_execution_overrides_thread_groups_as_taurus_does() {
    let yaml = format!(
        "{SERVER}execution: [{{scenario: plan, concurrency: 5, iterations: 2, ramp-up: 1s}}]\nscenarios:\n  plan: {{script: every_element.jmx}}\n"
    );
    let dir = suite_dir(&yaml);
    let (code, out) = helpers::perfgate_in(dir.path(), &["list", "--format", "json", "s.yaml"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out[out.find('[').unwrap()..]).unwrap();
    let e = v[0]["executions"].as_array().unwrap();
    let shape = |i: usize| {
        (
            e[i]["concurrency"].as_u64(),
            e[i]["iterations"].as_u64(),
            e[i]["phase"].as_str(),
        )
    };
    assert_eq!(shape(0), (Some(1), Some(1), Some("setup")));
    assert_eq!(
        shape(1),
        (Some(5), Some(10), Some("main")),
        "5 users × 2 loops each"
    );
    assert_eq!(e[1]["ramp_up"], "1s");
    assert_eq!(shape(2), (Some(1), Some(1), Some("teardown")));
}

/// An element perfgate does not run is an error naming it, its testname and its line; a
/// disabled one is skipped; an unknown function is an error.
#[test]
fn unsupported_elements_and_functions_are_errors_with_their_line() {
    let plan = std::fs::read_to_string(fixture("every_element.jmx")).unwrap();
    let dir = suite_dir(&format!(
        "{SERVER}execution: [{{scenario: plan}}]\nscenarios:\n  plan: {{script: every_element.jmx}}\n"
    ));
    let enabled = plan.replace(
        r#"testname="never runs" enabled="false""#,
        r#"testname="never runs" enabled="true""#,
    );
    std::fs::write(dir.path().join("every_element.jmx"), &enabled).unwrap();
    let (code, out) = helpers::perfgate_in(dir.path(), &["validate", "s.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the JMeter element <BeanShellSampler> `never runs` is not supported"),
        "{out}"
    );
    assert!(out.contains("every_element.jmx:175:"), "{out}");
    let random = plan.replace("${__P(loops,3)}", "${__Random(1,3)}");
    std::fs::write(dir.path().join("every_element.jmx"), random).unwrap();
    let (code, out) = helpers::perfgate_in(dir.path(), &["validate", "s.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the JMeter function `__Random` is not supported"),
        "{out}"
    );
}

/// `perfgate import-jmx` prints YAML that validates and runs as the plan does.
#[test]
fn import_jmx_output_validates_and_runs() {
    let dir = suite_dir("");
    let (code, yaml) = helpers::perfgate_in(
        dir.path(),
        &["import-jmx", "every_element.jmx", "-J", "port=${PORT}"],
    );
    assert_eq!(code, 0, "{yaml}");
    assert!(
        yaml.contains("# approximated: line 64: the pause `settle`"),
        "{yaml}"
    );
    let server = SERVER.split("modules:").next().unwrap();
    std::fs::write(dir.path().join("s.yaml"), format!("{server}{yaml}")).unwrap();
    let (code, out) = helpers::perfgate_in(dir.path(), &["run", "s.yaml", "-a", "out"]);
    assert_eq!(code, 0, "{out}");
    let r = results(dir.path());
    assert_eq!(label(&r, "Inference")["hits"], 12);
    assert_eq!(label(&r, "Teardown live")["hits"], 1);
}

/// Each supported element's translation, as `import-jmx` prints it: the plan-level ones (user
/// variables, Arguments, HTTP defaults, headers, cookies, CSV) and the group-level ones
/// (timers, transaction, loop, if, pause, raw body, query arguments, header manager,
/// assertion, JSON and regex extractors), setUp and tearDown as phased executions.
#[test]
fn each_element_imports_as_its_perfgate_equivalent() {
    let dir = suite_dir("");
    let (code, yaml) = helpers::perfgate_in(
        dir.path(),
        &["import-jmx", "every_element.jmx", "-J", "port=8080"],
    );
    assert_eq!(code, 0, "{yaml}");
    let v: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    let plan = &v["scenarios"]["every_element"];
    // TestPlan user-defined variables and Arguments (with __P's default).
    assert_eq!(plan["variables"]["inputs"], "[0.1, 0.2, 0.3, 0.4]");
    assert_eq!(plan["variables"]["kind"], "probe");
    // ConfigTestElement: address from __P/__property, response timeout.
    assert_eq!(plan["default-address"], "http://127.0.0.1:8080");
    assert_eq!(plan["timeout"], "5000ms");
    // HeaderManager, CookieManager, CSVDataSet, UniformRandomTimer at group level.
    assert_eq!(plan["headers"]["X-Test"], "${kind}");
    assert_eq!(plan["store-cookie"], true);
    assert_eq!(plan["data-sources"][0]["path"], "models.csv");
    assert_eq!(plan["data-sources"][0]["variable-names"], "model");
    assert_eq!(plan["think-time"], "uniform(2ms, 1ms)");
    // TransactionController around a sampler and a LoopController.
    let flow = &plan["requests"][0];
    assert_eq!(flow["transaction"], "Infer flow");
    let metadata = &flow["do"][0];
    assert_eq!(
        metadata["url"], "/v2/models/${model}?verbose=1",
        "query arguments"
    );
    assert_eq!(metadata["extract-jsonpath"]["served"]["jsonpath"], "$.name");
    assert_eq!(
        metadata["extract-regexp"]["platform"]["regexp"],
        "\"platform\":\"([^\"]+)\""
    );
    let looped = &flow["do"][1];
    assert_eq!(looped["loop"], 2);
    let infer = &looped["do"][0];
    assert_eq!(infer["method"], "POST");
    assert!(
        infer["body"]
            .as_str()
            .unwrap()
            .contains("\"data\": ${inputs}"),
        "raw body"
    );
    assert_eq!(infer["headers"]["Content-Type"], "application/json");
    assert_eq!(infer["assert"][0]["contains"][0], "probabilities");
    assert_eq!(infer["think-time"], "1ms", "ConstantTimer");
    // IfController, the jexl3 wrapper taken off.
    assert_eq!(
        plan["requests"][1]["if"],
        "\"${platform}\" == \"perfgate-demo\""
    );
    assert_eq!(plan["requests"][1]["then"][0]["label"], "Demo live");
    // setUp with its TestAction pause; tearDown; the disabled sampler is absent.
    let setup = &v["scenarios"]["every_element - setUp warm"];
    assert_eq!(setup["requests"][0]["think-time"], "1100ms");
    let phases: Vec<&str> = v["execution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["phase"].as_str().unwrap_or("main"))
        .collect();
    assert_eq!(phases, ["setup", "main", "teardown"]);
    assert!(!yaml.contains("never runs"));
}
