//! Secrets never reach a report.
//!
//! The values of `Authorization`, `Cookie`, `Proxy-Authorization` and `X-Api-Key` headers,
//! and of the variables named in `settings.secrets`, are replaced by `***` in `effective.yml`,
//! `results.json` and everything rendered from it (HTML, JUnit, summary). A secret's value is
//! also masked wherever it appears inside another string: a URL with a token in its query, an
//! error message that echoes a header.

use serde_json::Value;

/// Header names whose values are always redacted (compared case-insensitively).
pub const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "proxy-authorization",
    "x-api-key",
];

const MASK: &str = "***";

/// Secrets shorter than this are not masked inside other strings (a 1-character secret would
/// mask every such character); they are still masked where they are the whole value.
const MIN_EMBEDDED: usize = 4;

/// What to redact for one suite.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Names of `settings.secrets`.
    names: Vec<String>,
    /// Their values (from `settings.env`, else the environment), longest first.
    values: Vec<String>,
}

impl Redactor {
    /// The redactor of a suite: its `settings.secrets`, and the values of the sensitive
    /// headers its scenarios send (so a server log that echoes them is masked too).
    pub fn for_suite(suite: &crate::suite::model::Suite) -> Self {
        let mut redactor = Self::new(&suite.settings.secrets, &suite.settings.env);
        let mut headers: Vec<&(String, String)> = Vec::new();
        fn steps<'a>(list: &'a [crate::suite::model::Step], out: &mut Vec<&'a (String, String)>) {
            use crate::suite::model::Step;
            for step in list {
                match step {
                    Step::Request(r) => out.extend(r.headers.iter()),
                    Step::Transaction { steps: inner, .. } | Step::Loop { steps: inner, .. } => {
                        steps(inner, out);
                    }
                    Step::If {
                        then, otherwise, ..
                    } => {
                        steps(then, out);
                        steps(otherwise, out);
                    }
                    Step::IncludeScenario { .. } | Step::SetVariables { .. } => {}
                }
            }
        }
        for scenario in &suite.scenarios {
            headers.extend(scenario.headers.iter());
            steps(&scenario.steps, &mut headers);
        }
        for (name, value) in headers {
            if SENSITIVE_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                // `Bearer abc`: the credential alone is what a log would echo elsewhere.
                for part in std::iter::once(value.as_str()).chain(value.split_whitespace().skip(1))
                {
                    if !part.is_empty() && !part.contains("${") {
                        redactor.values.push(part.to_owned());
                    }
                }
            }
        }
        redactor.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        redactor.values.dedup();
        redactor
    }

    /// Also masks these values (as found in suites that did not validate).
    pub fn with_values(mut self, values: impl IntoIterator<Item = String>) -> Self {
        self.values
            .extend(values.into_iter().filter(|v| !v.is_empty()));
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.values.dedup();
        self
    }

    /// One redactor for several suites (validate, list, dry runs).
    pub fn merge(mut self, other: Self) -> Self {
        self.names.extend(other.names);
        self.values.extend(other.values);
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.values.dedup();
        self
    }

    pub fn new(secrets: &[String], env: &[(String, String)]) -> Self {
        let mut values: Vec<String> = secrets
            .iter()
            .filter_map(|name| {
                env.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .or_else(|| std::env::var(name).ok())
            })
            .filter(|v| !v.is_empty())
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self {
            names: secrets.to_vec(),
            values,
        }
    }

    /// Masks secret values inside `text`, and the password of any `scheme://user:password@`
    /// URL in it.
    pub fn text(&self, text: &str) -> String {
        let mut out = mask_url_credentials(text);
        for v in self.values.iter().filter(|v| v.len() >= MIN_EMBEDDED) {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }

    /// Redacts a config tree: sensitive headers and secret variables by key, secret values
    /// anywhere.
    pub fn config(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    let lower = key.to_ascii_lowercase();
                    let header = SENSITIVE_HEADERS.contains(&lower.as_str()) && !v.is_object();
                    let secret = self.names.iter().any(|n| n == key) && v.is_string();
                    if header || secret {
                        *v = Value::String(MASK.to_owned());
                    } else {
                        self.config(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.config(v)),
            Value::String(s) => {
                if self.values.iter().any(|v| v == s) {
                    *s = MASK.to_owned();
                } else {
                    *s = self.text(s);
                }
            }
            _ => {}
        }
    }

    /// Masks secret values in every string of a serialisable report (labels, URLs, error
    /// messages, log tails) and in map keys (error messages are keys).
    pub fn report<T: serde::Serialize + serde::de::DeserializeOwned>(&self, report: T) -> T {
        let Ok(mut value) = serde_json::to_value(&report) else {
            return report;
        };
        self.strings(&mut value);
        serde_json::from_value(value).unwrap_or(report)
    }

    /// [`Redactor::report`] for a suite, without taking its timeline (the bulk of a long
    /// run's report) through JSON: its only text, each row's label and response codes, is
    /// masked in place.
    pub fn suite_report(&self, mut report: super::model::SuiteReport) -> super::model::SuiteReport {
        let mut timeline = std::mem::take(&mut report.timeline);
        let mut report = self.report(report);
        for row in &mut timeline {
            row.label = self.text(&row.label);
            if row.rc.keys().any(|code| self.text(code) != *code) {
                row.rc = std::mem::take(&mut row.rc)
                    .into_iter()
                    .map(|(code, n)| (self.text(&code), n))
                    .collect();
            }
        }
        report.timeline = timeline;
        report
    }

    fn strings(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    self.strings(&mut v);
                    map.insert(self.text(&k), v);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.strings(v)),
            Value::String(s) => *s = self.text(s),
            _ => {}
        }
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`, wherever it appears in `text`.
fn mask_url_credentials(text: &str) -> String {
    static CREDENTIALS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*):[^/@\s]*@")
            .expect("a valid regex")
    });
    if !text.contains("://") {
        return text.to_owned();
    }
    CREDENTIALS.replace_all(text, "$1:***@").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_secrets_are_masked() {
        let r = Redactor::new(
            &["TOKEN".to_owned()],
            &[("TOKEN".to_owned(), "s3cr3t-value".to_owned())],
        );
        let mut config = serde_json::json!({
            "settings": {"env": {"TOKEN": "s3cr3t-value", "MODEL": "mlp"}},
            "scenarios": {"s": {
                "headers": {"Authorization": "Bearer abc", "x-api-key": "k", "Accept": "*/*"},
                "requests": [{"url": "http://127.0.0.1/x?token=s3cr3t-value", "headers": {"Cookie": "a=b"}}]
            }}
        });
        r.config(&mut config);
        let text = config.to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(!text.contains("Bearer"), "{text}");
        assert!(!text.contains("a=b"), "{text}");
        assert_eq!(config["scenarios"]["s"]["headers"]["Accept"], "*/*");
        assert_eq!(config["settings"]["env"]["MODEL"], "mlp");
        assert_eq!(
            config["scenarios"]["s"]["requests"][0]["url"],
            "http://127.0.0.1/x?token=***"
        );
        let errors: std::collections::BTreeMap<String, u64> =
            [("401: bad token s3cr3t-value".to_owned(), 3)].into();
        let errors = r.report(errors);
        assert_eq!(
            errors.keys().next().map(String::as_str),
            Some("401: bad token ***")
        );
    }

    #[test]
    fn credentials_in_urls_are_masked() {
        let r = Redactor::default();
        assert_eq!(
            r.text("GET http://bob:hunter2@127.0.0.1:80/x failed; https://u:p@h/ too"),
            "GET http://bob:***@127.0.0.1:80/x failed; https://u:***@h/ too"
        );
        assert_eq!(
            r.text("http://127.0.0.1:8080/a@b"),
            "http://127.0.0.1:8080/a@b"
        );
    }
}
