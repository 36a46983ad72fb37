//! `final-stats` `dump-xml`: Taurus's final-stats XML, which the Jenkins Performance Plugin
//! reads: `<FinalStatus>` with `<TestDuration>` and a `<Group label="...">` per label, each
//! KPI as `<name value=".." [param=".."] name=".."><name/><value/></name>`. Written with
//! quick-xml, which escapes labels and codes.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::model::{LabelStats, PERCENTILES, SuiteReport, level_name};

/// The XML of a suite's cumulative stats; times in seconds, as Taurus writes them.
pub fn final_stats_xml(suite: &SuiteReport) -> std::io::Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("FinalStatus").write_inner_content(|w| {
        w.create_element("TestDuration")
            .write_text_content(BytesText::new(&format!("{:.3}", suite.duration_s)))?;
        for l in &suite.labels {
            w.create_element("Group")
                .with_attribute(("label", l.label.as_str()))
                .write_inner_content(|w| group(w, l))?;
        }
        Ok(())
    })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

fn group(w: &mut Writer<Vec<u8>>, l: &LabelStats) -> std::io::Result<()> {
    let s = |ms: Option<f64>| ms.map_or("0".to_owned(), |v| format!("{:.6}", v / 1e3));
    // Taurus's final `throughput` is the number of samples.
    let mut items: Vec<(&str, Option<String>, String)> = vec![
        ("throughput", None, l.hits.to_string()),
        ("concurrency", None, l.concurrency.to_string()),
        ("succ", None, l.succ.to_string()),
        ("fail", None, l.fail.to_string()),
        ("avg_rt", None, s(l.avg_rt_ms)),
        ("stdev_rt", None, s(l.stdev_rt_ms)),
        ("avg_lt", None, s(l.avg_lt_ms)),
        ("avg_ct", None, s(l.avg_ct_ms)),
        ("bytes", None, l.bytes.to_string()),
    ];
    for level in PERCENTILES {
        let key = level_name(*level);
        let value = s(l.percentiles_ms.get(&key).copied());
        items.push(("perc", Some(key), value));
    }
    for (code, n) in &l.rc {
        items.push(("rc", Some(code.clone()), n.to_string()));
    }
    for (element, param, value) in items {
        let name = match &param {
            Some(p) => format!("{element}/{p}"),
            None => element.to_owned(),
        };
        let mut e = w
            .create_element(element)
            .with_attribute(("value", value.as_str()));
        if let Some(p) = &param {
            e = e.with_attribute(("param", p.as_str()));
        }
        e.with_attribute(("name", name.as_str()))
            .write_inner_content(|w| {
                w.create_element("name")
                    .write_text_content(BytesText::new(&name))?;
                w.create_element("value")
                    .write_text_content(BytesText::new(&value))?;
                Ok(())
            })?;
    }
    Ok(())
}
