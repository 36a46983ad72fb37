//! The Prometheus text exposition format (0.0.4, and OpenMetrics text as servers write it),
//! read line by line. Leniently: a line that does not parse is counted and skipped, never the
//! whole scrape. Label values are quoted strings with `\\`, `\"` and `\n` escapes and may hold
//! any character (`path="/v2/models/{model_name}/infer"`, commas, `=`).
//!
//! Hand-written on purpose: `prometheus-parse` silently drops series whose label values hold
//! `{` or `}` (route templates, which model servers use), and `openmetrics-parser` rejects a
//! whole exposition over one naming detail (`# TYPE x counter` above `x_total`, which the
//! Prometheus client libraries write in OpenMetrics mode). The grammar is small; this reads it
//! whole.

use std::collections::HashSet;

/// Label names and values, in order.
pub type Labels = Vec<(String, String)>;

/// One sample line: a series and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Series>,
    /// Sample names that are counters (`# TYPE x counter`: `x`, `x_total`; histograms and
    /// summaries: `x_count`, `x_sum`, `x_bucket`).
    pub counters: HashSet<String>,
    /// Lines that were neither a comment nor a sample.
    pub malformed: usize,
}

/// Reads an exposition.
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if let (Some("TYPE"), Some(name), Some(kind)) =
                (words.next(), words.next(), words.next())
            {
                let suffixes: &[&str] = match kind {
                    "counter" => &["", "_total"],
                    "histogram" | "summary" | "gaugehistogram" => &["_count", "_sum", "_bucket"],
                    _ => &[],
                };
                for suffix in suffixes {
                    out.counters.insert(format!("{name}{suffix}"));
                }
            }
            continue;
        }
        match sample(line) {
            Some(series) => out.samples.push(series),
            None => out.malformed += 1,
        }
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// `name{labels} value [timestamp] [# exemplar]`.
fn sample(line: &str) -> Option<Series> {
    let end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if rest.trim_start().starts_with('{') {
        let (parsed, after) = label_set(rest.trim_start()).ok()?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some(Series {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// A label set `{a="x",b="y"}` at the start of `text`, and what follows it. Values are
/// quoted, with `\\`, `\"` and `\n` escapes; anything else goes inside them.
pub fn label_set(text: &str) -> Result<(Labels, &str), String> {
    let mut rest = text
        .strip_prefix('{')
        .ok_or_else(|| "label matchers start with `{`".to_owned())?;
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("`{rest}` is not a label matcher such as code=\"200\""))?;
        let label = rest[..eq].trim();
        if label.is_empty()
            || label.starts_with(|c: char| c.is_ascii_digit())
            || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!("`{label}` is not a valid label name"));
        }
        rest = rest[eq + 1..].trim_start();
        let body = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of `{label}` must be in double quotes"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let close = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("the value of `{label}` is not closed")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(format!("the value of `{label}` is not closed")),
            }
        };
        labels.push((label.to_owned(), value));
        rest = body[close + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected `,` or `}}` after the value of `{label}`"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_may_hold_braces_commas_and_escapes() {
        let text = r#"# TYPE req counter
req_total{path="/v2/models/{model_name}/infer",code="200"} 10
req_total{path="/a,b=c",code="500"} 2 1700000000000
req_total{path="say \"hi\"\\now\n"} 1
weird{le="+Inf"} +Inf
not a sample line
"#;
        let e = parse(text);
        assert_eq!(e.malformed, 1);
        assert_eq!(e.samples.len(), 4);
        assert_eq!(
            e.samples[0].labels,
            [
                (
                    "path".to_owned(),
                    "/v2/models/{model_name}/infer".to_owned()
                ),
                ("code".to_owned(), "200".to_owned())
            ]
        );
        assert_eq!(e.samples[1].labels[0].1, "/a,b=c");
        assert_eq!(e.samples[1].value, 2.0);
        assert_eq!(e.samples[2].labels[0].1, "say \"hi\"\\now\n");
        assert!(e.samples[3].value.is_infinite());
        assert!(e.counters.contains("req_total") && e.counters.contains("req"));
    }

    #[test]
    fn histograms_summaries_and_exemplars() {
        let text = "# TYPE lat histogram\n\
                    lat_bucket{le=\"0.1\"} 4 # {trace_id=\"abc\"} 0.05\n\
                    lat_count 5\n\
                    # TYPE up gauge\n\
                    up 1\n";
        let e = parse(text);
        assert_eq!(e.samples[0].value, 4.0);
        for name in ["lat_bucket", "lat_count", "lat_sum"] {
            assert!(e.counters.contains(name), "{name}");
        }
        assert!(!e.counters.contains("up"));
    }

    #[test]
    fn bad_label_sets_say_why() {
        for (text, why) in [
            ("{code=200}", "double quotes"),
            ("{code=\"200}", "not closed"),
            ("{1x=\"a\"}", "valid label name"),
            ("{a=\"1\" b=\"2\"}", "expected `,`"),
        ] {
            let e = label_set(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
