//! `settings` and `modules`: ports, env, secrets, intervals, module aliases and Taurus module settings.

#[allow(unused_imports)]
use super::super::*;
#[allow(unused_imports)]
use super::*;

/// `settings.max-dropped` when none is given, in percent of arrivals.
pub(in crate::suite::validate) const DEFAULT_MAX_DROPPED: f64 = 1.0;

/// `settings.graceful-stop` when none is given.
pub(in crate::suite::validate) const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(2);

impl Validator<'_> {
    pub(in crate::suite::validate) fn settings(
        &mut self,
        raw: Option<&Located<RawSettings>>,
    ) -> Settings {
        let s = raw.and_then(Located::get);
        let mut ports = Vec::new();
        for port in s.and_then(|s| s.ports.as_ref()).into_iter().flatten() {
            let Some(name) = port.get() else { continue };
            if !is_identifier(name) {
                self.push(
                    Diagnostic::error(
                        port.span,
                        format!("`{name}` is not a valid port variable name"),
                    )
                    .with_hint("use letters, digits and `_`, e.g. PORT or MGMT_PORT"),
                );
            }
            ports.push(name.clone());
        }
        if let Some(dir) = s.and_then(|s| s.artifacts_dir.as_ref()) {
            self.push(
                Diagnostic::warning(
                    dir.span,
                    "`settings.artifacts-dir` is ignored: a run's reports go to one directory for all its suites",
                )
                .with_hint("choose it with `perfgate run -a DIR` (default reports/<UTC timestamp>/)"),
            );
        }
        if let Some(range) = s.and_then(|s| s.port_range.as_ref())
            && let Some(text) = range.get()
            && crate::suite::load::parse_port_range(text).is_none()
        {
            self.push(
                Diagnostic::error(range.span, format!("invalid port range `{text}`")).with_hint(
                    "write LOW-HIGH with 1024 <= LOW <= HIGH <= 65535, e.g. 20000-32766",
                ),
            );
        }
        Settings {
            artifacts_dir: s
                .and_then(|s| s.artifacts_dir.as_ref())
                .and_then(|a| a.get().cloned()),
            env: s
                .and_then(|s| s.env.as_ref())
                .map(|e| {
                    e.iter()
                        // `X: null` is defined and empty, as Taurus exports it.
                        .map(|(k, v)| {
                            (
                                k.to_owned(),
                                v.as_ref().map_or_else(String::new, |v| v.0.clone()),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ports,
            secrets: s
                .and_then(|s| s.secrets.as_ref())
                .map(|list| list.iter().filter_map(|l| l.get().cloned()).collect())
                .unwrap_or_default(),
            ramp_up_exclude: s.and_then(|s| s.ramp_up_exclude).unwrap_or(false),
            check_interval: dur(s.and_then(|s| s.check_interval.as_ref()))
                .unwrap_or(Duration::from_secs(1)),
            sequential: false,
            graceful_stop: dur(s.and_then(|s| s.graceful_stop.as_ref()))
                .unwrap_or(DEFAULT_GRACEFUL_STOP),
            baseline: s
                .and_then(|s| s.baseline.as_ref())
                .and_then(|b| b.get().cloned()),
            fail_without_baseline: self
                .on_missing_baseline(s.and_then(|s| s.on_missing_baseline.as_ref()))
                .unwrap_or(false),
            max_dropped: s
                .and_then(|s| s.max_dropped.as_ref())
                .and_then(|m| {
                    let text = m.get()?;
                    match crate::suite::units::parse_percent(text) {
                        Ok(p) if (0.0..=100.0).contains(&p) => Some(p),
                        _ => {
                            self.push(
                                Diagnostic::error(m.span, format!("invalid `max-dropped` `{text}`"))
                                    .with_hint("write a share of arrivals such as 1% or 5% (100% turns the check off)"),
                            );
                            None
                        }
                    }
                })
                .unwrap_or(DEFAULT_MAX_DROPPED),
        }
    }

    /// `on-missing-baseline: fail|notice`: `Some(true)` for `fail`.
    pub(in crate::suite::validate) fn on_missing_baseline(
        &mut self,
        value: Option<&Located<String>>,
    ) -> Option<bool> {
        let value = value?;
        match value.get()?.trim() {
            "fail" => Some(true),
            "notice" => Some(false),
            other => {
                self.push(
                    Diagnostic::error(
                        value.span,
                        format!("unknown `on-missing-baseline` `{other}`"),
                    )
                    .with_suggestion(other, ["fail", "notice"])
                    .with_hint(
                        "write `fail` (no baseline fails the criterion) or `notice` (the default)",
                    ),
                );
                None
            }
        }
    }

    /// Module aliases and the Taurus module settings that change behaviour; returns
    /// `modules.local.sequential`.
    pub(in crate::suite::validate) fn modules(&mut self, raw: &RawSuite) -> bool {
        let mut sequential = false;
        let Some(modules) = &raw.modules else {
            return sequential;
        };
        for (key, value) in &modules.0 {
            let (Some(alias), Some(settings)) = (key.get(), value.get()) else {
                continue;
            };
            let class = settings.get("class").and_then(|c| c.as_str());
            match class {
                Some(class) => {
                    let kind = if MONITOR_CLASSES.contains(&class) {
                        ModuleKind::Monitoring
                    } else if PASSFAIL_CLASSES.contains(&class) {
                        ModuleKind::Passfail
                    } else if SHELLEXEC_CLASSES.contains(&class) {
                        ModuleKind::Shellexec
                    } else {
                        let known: Vec<&str> = MONITOR_CLASSES
                            .iter()
                            .chain(PASSFAIL_CLASSES)
                            .chain(SHELLEXEC_CLASSES)
                            .copied()
                            .collect();
                        self.push(
                            Diagnostic::error(
                                value.span,
                                format!("unknown module class `{class}` for module `{alias}`"),
                            )
                            .with_suggestion(class, known.iter().copied())
                            .with_hint(format!("perfgate knows the classes {}", known.join(", "))),
                        );
                        continue;
                    };
                    self.aliases.insert(alias.clone(), kind);
                }
                None if alias == "local" && settings.get("sequential").is_some() => {
                    match settings.get("sequential").and_then(serde_json::Value::as_bool) {
                        Some(on) => sequential = on,
                        None => self.push(
                            Diagnostic::error(key.span, "`modules.local.sequential` must be true or false")
                                .with_hint("`sequential: true` runs the executions one after another, as Taurus does"),
                        ),
                    }
                }
                // JMeter properties feed the suite's .jmx plans; the rest of the module is
                // JMeter's own.
                None if alias == "jmeter"
                    && settings
                        .as_object()
                        .is_some_and(|m| m.keys().all(|k| k == "properties")) => {}
                None if FOREIGN_TOOLS.contains(&alias.as_str()) || alias == "local" => {
                    self.push(Diagnostic::warning(
                        key.span,
                        format!("`modules.{alias}` is ignored: these are settings for a Taurus module that perfgate replaces"),
                    ));
                }
                None => self.push(
                    Diagnostic::warning(
                        key.span,
                        format!("`modules.{alias}` has no `class` and is ignored"),
                    )
                    .with_hint(
                        "module aliases need `class:`, e.g. metrics_monitoring_inproc.Monitor",
                    ),
                ),
            }
        }
        sequential
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, suite_with};

    #[test]
    fn ports_env_and_secrets_are_read() {
        let (suite, messages) = check(&suite_with(
            "settings: {ports: [PORT, MGMT], env: {A: a, N: null}, secrets: [A]}\n",
        ));
        let suite = suite.unwrap_or_else(|| panic!("{messages:?}"));
        assert_eq!(suite.settings.ports, ["PORT", "MGMT"]);
        assert!(
            suite
                .settings
                .env
                .contains(&("N".to_owned(), String::new()))
        );
        assert_eq!(suite.settings.secrets, ["A"]);
    }

    #[test]
    fn bad_port_range_and_ignored_keys() {
        let (suite, messages) = check(&suite_with("settings: {port-range: 9000-80}\n"));
        assert!(suite.is_none());
        assert!(
            messages.iter().any(|m| m == "invalid port range `9000-80`"),
            "{messages:?}"
        );
        let (suite, messages) = check(&suite_with("settings: {artifacts-dir: /tmp/x}\n"));
        assert!(suite.is_some(), "a warning only");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("`settings.artifacts-dir` is ignored"))
        );
    }

    #[test]
    fn sequential_executions_are_a_setting() {
        let (suite, _) = check(&suite_with("modules: {local: {sequential: true}}\n"));
        assert!(suite.is_some_and(|s| s.settings.sequential));
        let (suite, messages) = check(&suite_with("modules: {local: {sequential: maybe}}\n"));
        assert!(suite.is_none());
        assert!(messages.iter().any(|m| m.contains("must be true or false")));
    }
}
