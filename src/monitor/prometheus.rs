//! The `prometheus` source: scrapes a text-format endpoint (parsed by [`exposition`])
//! and turns the selected series into samples. Counters (and the `_count`/`_sum` of
//! histograms and summaries) become per-second rates; gauges stay values. A selector that
//! matches several series (say, every `code`) gives their sum.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::exposition;
use super::names::{Selector, parse_selector};

#[derive(Debug)]
pub struct Prometheus {
    url: String,
    selectors: Vec<(String, Selector)>,
    client: reqwest::Client,
    /// The previous reading of each counter selector, for rates.
    last: BTreeMap<String, (f64, Instant)>,
}

impl Prometheus {
    pub fn new(url: &str, metrics: &[String], timeout: Duration) -> Self {
        let selectors = metrics
            .iter()
            .filter_map(|m| parse_selector(m).ok().map(|s| (m.clone(), s)))
            .collect();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Self {
            url: url.to_owned(),
            selectors,
            client,
            last: BTreeMap::new(),
        }
    }

    /// One scrape. A failed scrape gives nothing (the series shows a gap, and a criterion on
    /// it reports no data rather than a made-up zero).
    pub async fn sample(&mut self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let Ok(response) = self.client.get(&self.url).send().await else {
            return out;
        };
        let Ok(text) = response.text().await else {
            return out;
        };
        let now = Instant::now();
        let mut values = select(&text, &self.selectors);
        values.extend(select_histograms(&text, &self.selectors));
        for (name, (value, counter)) in values {
            if !counter {
                out.insert(name, value);
                continue;
            }
            if let Some((prev, at)) = self.last.insert(name.clone(), (value, now)) {
                let dt = now.duration_since(at).as_secs_f64();
                // A counter that went down was reset: everything since counts.
                let delta = if value >= prev { value - prev } else { value };
                if dt > 0.0 {
                    out.insert(name, delta / dt);
                }
            }
        }
        // A histogram's own series: the mean of what it observed between the two scrapes.
        let parts: Vec<String> = out
            .keys()
            .filter_map(|k| k.strip_suffix(&format!("{BUCKET}count")))
            .map(str::to_owned)
            .collect();
        for key in parts {
            let count = out.remove(&format!("{key}{BUCKET}count"));
            let sum = out.remove(&format!("{key}{BUCKET}sum"));
            if let (Some(count), Some(sum)) = (count, sum)
                && count > 0.0
            {
                out.insert(key, sum / count);
            }
        }
        out
    }
}

/// Separates a histogram selector from one of its buckets (`le`) in a sampler's values:
/// `request_seconds\u{1}0.1`. Never in a metric name.
pub const BUCKET: char = '\u{1}';

/// The buckets, `_sum` and `_count` of every selector that names a histogram (`x` with
/// `x_bucket{le=...}` series), summed over the series its matchers select: cumulative
/// counts, keyed `<selector>\u{1}<le>` (and `\u{1}sum`, `\u{1}count`).
pub fn select_histograms(
    text: &str,
    selectors: &[(String, Selector)],
) -> BTreeMap<String, (f64, bool)> {
    let scrape = exposition::parse(text);
    let mut out = BTreeMap::new();
    for (key, selector) in selectors {
        let matches = |labels: &[(String, String)]| {
            selector
                .labels
                .iter()
                .all(|(k, v)| labels.iter().any(|(sk, sv)| sk == k && sv == v))
        };
        let bucket = format!("{}_bucket", selector.name);
        let sum = format!("{}_sum", selector.name);
        let count = format!("{}_count", selector.name);
        let mut found = false;
        for sample in scrape.samples.iter().filter(|s| matches(&s.labels)) {
            let part = if sample.name == bucket {
                let Some((_, le)) = sample.labels.iter().find(|(k, _)| k == "le") else {
                    continue;
                };
                found = true;
                le.clone()
            } else if sample.name == sum {
                "sum".to_owned()
            } else if sample.name == count {
                "count".to_owned()
            } else {
                continue;
            };
            let entry = out
                .entry(format!("{key}{BUCKET}{part}"))
                .or_insert((0.0, true));
            entry.0 += sample.value;
        }
        if !found {
            out.retain(|k: &String, _| !k.starts_with(&format!("{key}{BUCKET}")));
        }
    }
    out
}

/// The value of every selector found in `text`, and whether it is a counter. A selector
/// matches the series of its name whose labels include its matchers; several are summed.
pub fn select(text: &str, selectors: &[(String, Selector)]) -> BTreeMap<String, (f64, bool)> {
    let scrape = exposition::parse(text);
    let mut out = BTreeMap::new();
    for (key, selector) in selectors {
        let mut found: Option<(f64, bool)> = None;
        for sample in &scrape.samples {
            let matches = sample.name == selector.name
                && selector
                    .labels
                    .iter()
                    .all(|(k, v)| sample.labels.iter().any(|(sk, sv)| sk == k && sv == v));
            if !matches {
                continue;
            }
            let counter = scrape.counters.contains(&sample.name);
            let f = found.get_or_insert((0.0, counter));
            f.0 += sample.value;
        }
        if let Some(f) = found {
            out.insert(key.clone(), f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_label_selectors() {
        let text = "# TYPE requests counter\n\
                    requests_total{code=\"200\"} 10\n\
                    requests_total{code=\"500\"} 2\n\
                    # TYPE in_flight gauge\n\
                    in_flight 3\n\
                    # TYPE latency histogram\n\
                    latency_bucket{le=\"0.1\"} 4\n\
                    latency_bucket{le=\"+Inf\"} 5\n\
                    latency_sum 0.3\n\
                    latency_count 5\n";
        let sel = |s: &str| (s.to_owned(), parse_selector(s).expect("valid selector"));
        let got = select(
            text,
            &[
                sel("requests_total"),
                sel("requests_total{code=\"500\"}"),
                sel("in_flight"),
                sel("latency_count"),
                sel("missing"),
            ],
        );
        assert_eq!(got["requests_total"], (12.0, true));
        assert_eq!(got["requests_total{code=\"500\"}"], (2.0, true));
        assert_eq!(got["in_flight"], (3.0, false));
        assert_eq!(got["latency_count"], (5.0, true));
        assert!(!got.contains_key("missing"));
    }

    /// A summary's quantiles are gauges (the server computed them); its `_count` and `_sum`
    /// are counters.
    #[test]
    fn summary_quantiles_read_as_gauges() {
        let text = "# TYPE rpc_seconds summary\n\
                    rpc_seconds{quantile=\"0.5\"} 0.05\n\
                    rpc_seconds{quantile=\"0.95\"} 0.2\n\
                    rpc_seconds_sum 12.5\n\
                    rpc_seconds_count 100\n";
        let sel = |s: &str| (s.to_owned(), parse_selector(s).expect("valid selector"));
        let p95 = "rpc_seconds{quantile=\"0.95\"}";
        let got = select(text, &[sel(p95), sel("rpc_seconds_count")]);
        assert_eq!(got[p95], (0.2, false));
        assert_eq!(got["rpc_seconds_count"], (100.0, true));
        // Not a histogram: no buckets.
        assert!(select_histograms(text, &[sel("rpc_seconds")]).is_empty());
    }

    /// Route templates in label values (`{model_name}`) are kept, and selectors can name them.
    #[test]
    fn label_values_with_braces_are_selected() {
        let text = "# TYPE request_predict_seconds histogram\n\
                    request_predict_seconds_count{path=\"/v2/models/{model_name}/infer\",code=\"200\"} 7\n\
                    request_predict_seconds_count{path=\"/v2/models/{model_name}/ready\",code=\"200\"} 3\n";
        let sel = |s: &str| (s.to_owned(), parse_selector(s).expect("valid selector"));
        let infer = "request_predict_seconds_count{path=\"/v2/models/{model_name}/infer\"}";
        let got = select(text, &[sel("request_predict_seconds_count"), sel(infer)]);
        assert_eq!(got["request_predict_seconds_count"], (10.0, true));
        assert_eq!(got[infer], (7.0, true));
    }
}
