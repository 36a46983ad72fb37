//! `${name}` references left after interpolation: each must be something perfgate or the request fills in.

#[allow(unused_imports)]
use super::super::*;
#[allow(unused_imports)]
use super::*;

impl Validator<'_> {
    pub(in crate::suite::validate) fn check_variables(&mut self) {
        let Some(entries) = self.cx.effective.as_map() else {
            return;
        };
        let mut found = Vec::new();
        // Which of `found` are in `services` (shell commands, server command lines).
        let mut in_services = std::ops::Range::default();
        for entry in entries {
            let in_requests = entry.key == "scenarios";
            if entry.key == "services" {
                let start = found.len();
                collect_refs(&entry.value, false, &mut found);
                in_services = start..found.len();
                continue;
            }
            if entry.key == "settings" {
                for s in entry
                    .value
                    .as_map()
                    .into_iter()
                    .flatten()
                    .filter(|s| s.key != "env")
                {
                    collect_refs(&s.value, false, &mut found);
                }
                continue;
            }
            collect_refs(&entry.value, in_requests, &mut found);
        }
        for (index, (span, text, reference, in_requests)) in found.into_iter().enumerate() {
            let name = reference.name.as_str();
            let at = self.span_in(span, &text, reference.range.clone());
            if name.starts_with("__") {
                self.push(
                    Diagnostic::error(
                        at,
                        format!("JMeter functions such as `${{{name}}}` are not supported"),
                    )
                    .with_hint("declare the value under `settings.env` or as a scenario variable"),
                );
                continue;
            }
            if in_requests && (self.runtime_vars.contains(name) || self.unknown_columns) {
                continue;
            }
            if self.cx.known_variables.contains(name) {
                continue;
            }
            let candidates: Vec<&str> = self
                .cx
                .known_variables
                .iter()
                .chain(
                    if in_requests {
                        Some(&self.runtime_vars)
                    } else {
                        None
                    }
                    .into_iter()
                    .flatten(),
                )
                .map(String::as_str)
                .collect();
            let defined_in: Vec<&str> = self
                .cx
                .environments
                .iter()
                .filter(|(_, names)| names.contains(name))
                .map(|(env, _)| env.as_str())
                .collect();
            let hint = if let Some(env) = defined_in.first() {
                format!("`{name}` is defined in environments/{env}.yaml: run with `-e {env}`")
            } else if in_services.contains(&index) {
                format!(
                    "perfgate fills in `${{NAME}}` before a command runs: for a shell variable write `${name}` (no braces), or `$${{{name}}}` to pass `${{{name}}}` to the shell; or declare `{name}` under `settings.env`"
                )
            } else if in_requests {
                format!(
                    "declare `{name}` under `settings.env`, as a scenario variable, a CSV column or an extractor"
                )
            } else {
                format!(
                    "declare `{name}` under `settings.env` (request-time variables only work in requests)"
                )
            };
            self.push(
                Diagnostic::error(at, format!("undefined variable `${{{name}}}`"))
                    .with_suggestion(name, candidates)
                    .with_hint(hint),
            );
        }
    }
}

pub(in crate::suite::validate) fn collect_refs(
    node: &Node,
    in_requests: bool,
    out: &mut Vec<(Span, String, crate::suite::interpolate::Reference, bool)>,
) {
    match &node.kind {
        Kind::Str(text) => {
            for r in references(text) {
                out.push((node.span, text.clone(), r, in_requests));
            }
        }
        Kind::Seq(items) => items.iter().for_each(|i| collect_refs(i, in_requests, out)),
        Kind::Map(entries) => entries
            .iter()
            .for_each(|e| collect_refs(&e.value, in_requests, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::check;

    #[test]
    fn undefined_variables_and_escapes() {
        let (suite, messages) = check(
            "settings: {env: {A: a}}\nservices: [{module: shellexec, prepare: ['echo ${A} $${B} ${C}']}]\nexecution: [{scenario: s, concurrency: 1, hold-for: 1s}]\nscenarios: {s: {requests: ['http://127.0.0.1:9/']}}\n",
        );
        assert!(suite.is_none());
        let undefined: Vec<&String> = messages
            .iter()
            .filter(|m| m.starts_with("undefined variable"))
            .collect();
        assert_eq!(
            undefined,
            ["undefined variable `${C}`"],
            "`${{A}}` is defined, `$${{B}}` escaped"
        );
    }

    #[test]
    fn jmeter_functions_are_named() {
        let (_, messages) = check(
            "execution: [{scenario: s, concurrency: 1, hold-for: 1s}]\nscenarios: {s: {requests: ['http://127.0.0.1:9/${__Random(1,9)}']}}\n",
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("JMeter functions such as `${__Random(1,9)}`")),
            "{messages:?}"
        );
    }
}
