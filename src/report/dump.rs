//! `final-stats` `dump-xml`: Taurus's final-stats XML, which the Jenkins Performance Plugin
//! reads (`<FinalStatus>` with a `<Group label="...">` per label).

use std::fmt::Write as _;

use super::model::{PERCENTILES, SuiteReport, level_name};

/// The XML of a suite's cumulative stats; times in seconds, as Taurus writes them.
pub fn final_stats_xml(suite: &SuiteReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" ?>\n<FinalStatus>\n");
    let _ = writeln!(
        out,
        "  <TestDuration>{:.3}</TestDuration>",
        suite.duration_s
    );
    for l in &suite.labels {
        let _ = writeln!(out, "  <Group label=\"{}\">", escape(&l.label));
        let mut item = |name: &str, param: Option<&str>, value: String| {
            let (attr, full) = match param {
                Some(p) => (format!(" param=\"{}\"", escape(p)), format!("{name}/{p}")),
                None => (String::new(), name.to_owned()),
            };
            let _ = writeln!(
                out,
                "    <{name} value=\"{value}\"{attr} name=\"{n}\"><name>{n}</name><value>{value}</value></{name}>",
                n = escape(&full),
            );
        };
        let s = |ms: Option<f64>| ms.map_or("0".to_owned(), |v| format!("{:.6}", v / 1e3));
        item("throughput", None, l.hits.to_string());
        item("concurrency", None, l.concurrency.to_string());
        item("succ", None, l.succ.to_string());
        item("fail", None, l.fail.to_string());
        item("avg_rt", None, s(l.avg_rt_ms));
        item("stdev_rt", None, s(l.stdev_rt_ms));
        item("avg_lt", None, s(l.avg_lt_ms));
        item("avg_ct", None, s(l.avg_ct_ms));
        item("bytes", None, l.bytes.to_string());
        for level in PERCENTILES {
            let key = level_name(*level);
            item("perc", Some(&key), s(l.percentiles_ms.get(&key).copied()));
        }
        for (code, n) in &l.rc {
            item("rc", Some(code), n.to_string());
        }
        let _ = writeln!(out, "  </Group>");
    }
    out.push_str("</FinalStatus>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
