//! JUnit XML (quick-junit): `junit.xml` for the run, `xunit.xml` per suite.
//!
//! One `<testsuite>` per suite file; one `<testcase>` per criterion, named as Taurus names it
//! (`avg-rt of infer>150ms for 10s`), classname the suite. Names are unique within a suite (a
//! criterion repeated at another scope gets its scope appended) so viewers do not merge them.
//! A triggered criterion (or one with no data) is a `<failure>` giving the observed value, the
//! threshold, the logic and the window's start and end; a passing one says what was observed
//! in `<system-out>`; every judged one has `observed: <name>` (as shown) and
//! `observed-value: <name>` (a number in seconds, percent or bytes) properties on its suite,
//! so CI can chart them; a criterion never judged (the suite failed before its load) is `<skipped>`. A server or
//! engine failure is an `<error>` with the log tail; a suite without criteria is one skipped
//! testcase. With `data-source: sample-labels` the per-suite file has a testcase per label
//! instead, failed when any of its samples failed. quick-junit escapes every string, so labels
//! and log lines are text, never markup; [`to_xml`] then keeps to the Jenkins xunit-plugin's
//! `junit-10.xsd`, the strictest schema CI systems use.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use quick_xml::events::{BytesStart, Event};

use super::model::{CriterionReport, RunReport, SuiteReport, SuiteStatus};
use crate::criteria::eval::Verdict;

/// Attributes `junit-10.xsd` allows on the root `<testsuites>`; quick-junit also writes
/// `skipped` and `timestamp`, which Jenkins' xunit plugin rejects.
const TESTSUITES_ATTRIBUTES: &[&str] = &["name", "time", "tests", "failures", "errors"];

/// The XML of a report, valid against `junit-10.xsd`.
pub fn to_xml(report: &Report) -> std::io::Result<String> {
    let xml = report
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(xml.len()));
    loop {
        match reader
            .read_event()
            .map_err(|e| std::io::Error::other(e.to_string()))?
        {
            Event::Eof => break,
            Event::Start(start) if start.name().as_ref() == b"testsuites" => {
                let mut root = BytesStart::new("testsuites");
                for attr in start.attributes().flatten() {
                    let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
                    if TESTSUITES_ATTRIBUTES.contains(&key.as_str()) {
                        root.push_attribute(attr);
                    }
                }
                writer.write_event(Event::Start(root))?;
            }
            event => writer.write_event(event)?,
        }
    }
    String::from_utf8(writer.into_inner()).map_err(std::io::Error::other)
}

/// The run-level report: every suite, criteria as testcases.
pub fn run_report(run: &RunReport) -> Report {
    let mut report = Report::new("perfgate");
    if let Some(ts) = timestamp(&run.started_at) {
        report.set_timestamp(ts);
    }
    report.set_time(secs(run.duration_s));
    for suite in &run.suites {
        report.add_test_suite(test_suite(suite, false));
        if let Some(ts) = comparison_suite(suite) {
            report.add_test_suite(ts);
        }
    }
    report
}

/// A suite's comparisons with its baseline run (MMS's `diff_percent` checks), as MMS
/// reports them: a testsuite of their own, `<suite> comparison`.
fn comparison_suite(suite: &SuiteReport) -> Option<TestSuite> {
    let compared: Vec<CriterionReport> = suite
        .criteria
        .iter()
        .filter(|c| c.scope == super::model::COMPARISON_SCOPE)
        .cloned()
        .collect();
    let rows = suite.versus.as_ref().map_or(&[][..], |v| v.rows.as_slice());
    if compared.is_empty() && rows.is_empty() {
        return None;
    }
    let mut ts = TestSuite::new(format!("{} comparison", suite.name));
    if let Some(t) = timestamp(&suite.started_at) {
        ts.set_timestamp(t);
    }
    for (c, name) in compared.iter().zip(testcase_names(&compared)) {
        ts.add_test_case(criterion_case(suite, c, name));
    }
    // Each KPI against the baseline run: failed when it regressed.
    for r in rows {
        use super::versus::Verdict as V;
        let label = if r.label.is_empty() { "ALL" } else { &r.label };
        let value = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
        let change = r.change.map_or("-".to_owned(), |c| format!("{c:+.1}"));
        let mut text = format!(
            "{} of {label}: baseline {}, now {}, change {change}{}: {}",
            r.kpi.name(),
            value(r.old),
            value(r.new),
            if r.kpi == super::versus::Kpi::ErrorRate {
                " points"
            } else {
                "%"
            },
            r.verdict.name()
        );
        if let Some(shift) = &r.shift {
            text.push_str(&format!(
                " (a shift since {}: {:+.1}%, confidence {:.1}%)",
                shift.run,
                shift.change,
                shift.confidence * 100.0
            ));
        }
        let status = if r.verdict == V::Regression {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(text.as_str());
            st.set_type("regression");
            st
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(format!("{label} {} vs baseline", r.kpi.name()), status);
        case.set_classname(suite.name.as_str());
        if r.verdict != V::Regression {
            case.set_system_out(text);
        }
        ts.add_test_case(case);
    }
    Some(ts)
}

/// A suite's own report (`xunit.xml`), per criterion or (`sample_labels`) per label.
pub fn suite_report(suite: &SuiteReport, sample_labels: bool) -> Report {
    let mut report = Report::new(suite.name.as_str());
    if let Some(ts) = timestamp(&suite.started_at) {
        report.set_timestamp(ts);
    }
    report.set_time(secs(suite.duration_s));
    report.add_test_suite(test_suite(suite, sample_labels));
    if let Some(ts) = comparison_suite(suite) {
        report.add_test_suite(ts);
    }
    report
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

fn timestamp(rfc3339: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok()
}

/// Wall-clock time of second `s` of the suite's load.
pub fn wall_time(suite: &SuiteReport, s: u64) -> Option<String> {
    let t0 = timestamp(suite.load_started_at.as_deref()?)?;
    let t = t0 + chrono::Duration::seconds(i64::try_from(s).ok()?);
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn test_suite(suite: &SuiteReport, sample_labels: bool) -> TestSuite {
    let mut ts = TestSuite::new(suite.name.as_str());
    if let Some(t) = timestamp(&suite.started_at) {
        ts.set_timestamp(t);
    }
    ts.set_time(secs(suite.duration_s));
    ts.add_property(("path", suite.path.as_str()));
    ts.add_property(("seed", suite.seed.to_string().as_str()));
    if let Some(name) = &suite.stopped_by {
        ts.add_property(("stopped-by", name.as_str()));
    }
    if let Some(case) = error_case(suite) {
        ts.add_test_case(case);
    }
    if sample_labels {
        for label in suite.labels.iter().filter(|l| !l.label.is_empty()) {
            let status = if label.fail == 0 {
                TestCaseStatus::success()
            } else {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(format!("{} of {} samples failed", label.fail, label.hits));
                st.set_type("failed samples");
                let errors: Vec<String> = label
                    .errors
                    .iter()
                    .map(|(message, n)| format!("{n} × {message}"))
                    .collect();
                st.set_description(errors.join("\n"));
                st
            };
            let mut case = TestCase::new(label.label.as_str(), status);
            case.set_classname(suite.name.as_str());
            ts.add_test_case(case);
        }
    } else {
        let criteria: Vec<CriterionReport> = suite
            .criteria
            .iter()
            .filter(|c| c.scope != super::model::COMPARISON_SCOPE)
            .cloned()
            .collect();
        let names = testcase_names(&criteria);
        // The observed value of every judged criterion: as shown, and as a plain number in
        // base units (seconds, percent, bytes) for CI plots.
        for (c, name) in criteria.iter().zip(&names) {
            if c.verdict == Verdict::NotJudged {
                continue;
            }
            ts.add_property((
                format!("observed: {name}").as_str(),
                c.observed_text.as_str(),
            ));
            if let Some(v) = c.observed {
                ts.add_property((
                    format!("observed-value: {name}").as_str(),
                    v.to_string().as_str(),
                ));
            }
        }
        for (c, name) in criteria.iter().zip(names) {
            ts.add_test_case(criterion_case(suite, c, name));
        }
    }
    if ts.test_cases.is_empty() {
        let mut st = TestCaseStatus::skipped();
        st.set_message("this suite has no criteria");
        let mut case = TestCase::new("no criteria", st);
        case.set_classname(suite.name.as_str());
        ts.add_test_case(case);
    }
    ts
}

fn error_case(suite: &SuiteReport) -> Option<TestCase> {
    let (message, description, ty) = match (&suite.error, suite.status) {
        (Some(e), _) => {
            let mut description = String::new();
            if let Some(tail) = &e.log_tail {
                description.push_str(tail);
                description.push('\n');
            }
            if let Some(log) = &e.log {
                description.push_str(&format!("log: {log}\n"));
            }
            if let Some(hint) = &e.hint {
                description.push_str(&format!("hint: {hint}\n"));
            }
            (e.message.clone(), description, "error")
        }
        (None, SuiteStatus::Interrupted) => (
            "the run was interrupted; what was measured until then is reported".to_owned(),
            String::new(),
            "interrupted",
        ),
        (None, SuiteStatus::Incomplete) => (
            "the run did not end (perfgate was killed); this is its last checkpoint".to_owned(),
            String::new(),
            "incomplete",
        ),
        (None, _) => return None,
    };
    let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
    st.set_message(message);
    st.set_type(ty);
    if !description.is_empty() {
        st.set_description(description);
    }
    let mut case = TestCase::new(format!("{} run", suite.name), st);
    case.set_classname(suite.name.as_str());
    case.set_time(secs(suite.duration_s));
    Some(case)
}

/// Testcase names, unique within a suite: the criterion's name, then its scope when the same
/// text appears at another scope, then `#2`, `#3` for exact repeats.
pub fn testcase_names(criteria: &[CriterionReport]) -> Vec<String> {
    let count = |name: &str| criteria.iter().filter(|c| c.name == name).count();
    let mut names: Vec<String> = criteria
        .iter()
        .map(|c| {
            if count(&c.name) > 1 && c.scope != "suite" {
                format!("{} [{}]", c.name, c.scope)
            } else {
                c.name.clone()
            }
        })
        .collect();
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for name in &mut names {
        let n = seen.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            *name = format!("{name} #{n}");
        }
    }
    names
}

fn criterion_case(suite: &SuiteReport, c: &CriterionReport, name: String) -> TestCase {
    let status = match c.verdict {
        Verdict::Passed | Verdict::Notice => TestCaseStatus::success(),
        Verdict::NotJudged => {
            let mut st = TestCaseStatus::skipped();
            st.set_message(c.detail.as_str());
            st.set_type("not judged");
            st
        }
        Verdict::Failed | Verdict::NoData => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let message = match &c.message {
                Some(m) => format!("{m}: {}", c.detail),
                None => c.detail.clone(),
            };
            st.set_message(message);
            st.set_type(if c.verdict == Verdict::NoData {
                "no data"
            } else {
                "criterion"
            });
            st.set_description(description(suite, c));
            st
        }
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(suite.name.as_str());
    match c.verdict {
        Verdict::Notice => {
            case.set_system_out(format!("notice (non-failed): {}", c.detail));
        }
        Verdict::Passed => {
            case.set_system_out(format!("passed: {}", c.detail));
        }
        _ => {}
    }
    case
}

/// Every fact of a failed criterion, a line each.
fn description(suite: &SuiteReport, c: &CriterionReport) -> String {
    let mut lines = vec![
        format!("criterion: {}", c.name),
        format!("observed: {}", c.observed_text),
        format!("condition: {} {}", c.condition, c.threshold),
        format!("logic: {}", c.logic),
    ];
    if let Some((from, to)) = c.window {
        let at = |s| {
            wall_time(suite, s)
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        };
        lines.push(format!("window start: second {from}{}", at(from)));
        lines.push(format!("window end: second {to}{}", at(to)));
    }
    lines.push(format!("scope: {}", c.scope));
    if c.stopped_load {
        lines.push("action: stopped the load".to_owned());
    }
    lines.join("\n")
}
