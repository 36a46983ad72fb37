//! Server-side component times from response headers: W3C `Server-Timing`
//! (`name;dur=12.5;desc="..."`, several entries, in milliseconds) and `X-Timing-Info` (a JSON
//! object of seconds: `preprocessing`, `inference`, `postprocessing`, `server_processing`, as
//! model servers' component-timing benchmarks report them). Each becomes a
//! `server.<name>` value; when the server gives its total (`server_processing`, or a
//! Server-Timing entry `total`), `network = rt − total` too. A header that cannot be read is
//! counted, never fatal.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName};

use crate::metrics::{Measure, SERVER_PREFIX};

const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
const TIMING_INFO: HeaderName = HeaderName::from_static("x-timing-info");

/// The components a response's headers report, and how many headers could not be read.
pub(super) fn server_times(headers: &HeaderMap, rt: Duration) -> (Vec<Measure>, u32) {
    // Most responses have neither: two hash lookups and no allocation.
    if !headers.contains_key(SERVER_TIMING) && !headers.contains_key(TIMING_INFO) {
        return (Vec::new(), 0);
    }
    let mut measures = Vec::new();
    let mut malformed = 0;
    let mut total: Option<f64> = None;
    for value in headers.get_all(SERVER_TIMING) {
        match value.to_str().ok().and_then(parse_server_timing) {
            Some(entries) => {
                for (name, ms) in entries {
                    let secs = ms / 1e3;
                    if name == "total" || name == "server_processing" {
                        total = Some(secs);
                    }
                    measures.push(Measure::new(format!("{SERVER_PREFIX}{name}"), secs));
                }
            }
            None => malformed += 1,
        }
    }
    for value in headers.get_all(TIMING_INFO) {
        match value.to_str().ok().and_then(parse_timing_info) {
            Some(entries) => {
                for (name, secs) in entries {
                    if name == "server_processing" {
                        total = Some(secs);
                    }
                    let name = format!("{SERVER_PREFIX}{name}");
                    // Both headers may name a component: the first one read counts.
                    if !measures.iter().any(|m| m.name == name) {
                        measures.push(Measure::new(name, secs));
                    }
                }
            }
            None => malformed += 1,
        }
    }
    if let Some(total) = total {
        measures.push(Measure::new("network", (rt.as_secs_f64() - total).max(0.0)));
    }
    (measures, malformed)
}

/// `Server-Timing` entries with a duration, in milliseconds; `None` when the header is not
/// a list of `name[;param=value]...` entries (an entry without `dur` is a valid marker and is
/// skipped).
fn parse_server_timing(text: &str) -> Option<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for entry in split_outside_quotes(text, ',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let mut params = split_outside_quotes(entry, ';').into_iter();
        let name = params.next()?.trim();
        if !is_token(name) {
            return None;
        }
        let mut dur = None;
        for param in params {
            let (key, value) = match param.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (param.trim(), ""),
            };
            if !is_token(key) {
                return None;
            }
            if key.eq_ignore_ascii_case("dur") {
                let value = value.trim_matches('"');
                dur = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && *d >= 0.0)?,
                );
            }
        }
        if let Some(dur) = dur {
            out.push((name.to_owned(), dur));
        }
    }
    Some(out)
}

/// `X-Timing-Info`: a JSON object of non-negative numbers (seconds); `None` otherwise.
fn parse_timing_info(text: &str) -> Option<Vec<(String, f64)>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let object = value.as_object()?;
    let mut out = Vec::new();
    for (name, v) in object {
        let secs = v.as_f64().filter(|s| s.is_finite() && *s >= 0.0)?;
        if !is_token(name) {
            return None;
        }
        out.push((name.clone(), secs));
    }
    Some(out)
}

/// An RFC 9110 token (what a metric name may be).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn get(measures: &[Measure], name: &str) -> Option<f64> {
        measures.iter().find(|m| m.name == name).map(|m| m.value)
    }

    #[test]
    fn server_timing_entries() {
        let h = headers(&[
            (
                "server-timing",
                r#"db;dur=53.2;desc="a, quoted; desc", cache;desc=hit, app;dur=47"#,
            ),
            ("server-timing", "total;dur=120"),
        ]);
        let (m, malformed) = server_times(&h, Duration::from_millis(150));
        assert_eq!(malformed, 0);
        assert!((get(&m, "server.db").unwrap() - 0.0532).abs() < 1e-12);
        assert_eq!(get(&m, "server.app"), Some(0.047));
        assert_eq!(get(&m, "server.cache"), None, "no duration: a marker");
        assert!((get(&m, "network").unwrap() - 0.03).abs() < 1e-12);
    }

    #[test]
    fn timing_info_in_seconds() {
        let h = headers(&[(
            "x-timing-info",
            r#"{"preprocessing": 0.002, "inference": 0.010, "postprocessing": 0.001, "server_processing": 0.013}"#,
        )]);
        let (m, malformed) = server_times(&h, Duration::from_millis(20));
        assert_eq!(malformed, 0);
        assert_eq!(get(&m, "server.inference"), Some(0.010));
        assert_eq!(get(&m, "server.server_processing"), Some(0.013));
        assert!((get(&m, "network").unwrap() - 0.007).abs() < 1e-12);
    }

    /// A header that cannot be read is counted; the others still count.
    #[test]
    fn malformed_headers_are_counted() {
        let h = headers(&[
            ("server-timing", "db;dur=abc"),
            ("server-timing", "bad name;dur=1"),
            ("server-timing", "ok;dur=2"),
            ("x-timing-info", "{not json"),
            ("x-timing-info", r#"{"inference": "fast"}"#),
            ("x-timing-info", r#"[1, 2]"#),
        ]);
        let (m, malformed) = server_times(&h, Duration::from_millis(20));
        assert_eq!(malformed, 5);
        assert_eq!(get(&m, "server.ok"), Some(0.002));
        assert_eq!(get(&m, "network"), None, "no total given");
        let (none, zero) = server_times(&HeaderMap::new(), Duration::ZERO);
        assert!(none.is_empty() && zero == 0);
    }
}
