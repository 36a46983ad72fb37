//! `scenarios`: requests, transactions, data sources, assertions, extractors, and the checks across them (relative URLs, include cycles).

#[allow(unused_imports)]
use super::super::*;
#[allow(unused_imports)]
use super::*;

/// `max-body` when a scenario gives none: 10 MiB.
pub(in crate::suite::validate) const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;

impl Validator<'_> {
    pub(in crate::suite::validate) fn scenarios(&mut self, raw: &RawSuite) -> Vec<Scenario> {
        let Some(scenarios) = &raw.scenarios else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, scenario) in &scenarios.0 {
            let Some(name) = name.get() else { continue };
            let Some(s) = scenario.get() else {
                self.incomplete = true;
                continue;
            };
            if let Some(script) = &s.script {
                self.script(script);
                self.opaque_scenarios = true;
                continue;
            }
            for (var, _) in s.variables.iter().flat_map(Keyed::iter) {
                self.runtime_vars.insert(var.to_owned());
            }
            if s.default_address.as_ref().and_then(Located::get).is_some() {
                self.scenarios_with_address.insert(name.clone());
            }
            if s.requests.is_none() {
                self.push(
                    Diagnostic::error(
                        scenario.span,
                        format!("scenario `{name}` has no `requests`"),
                    )
                    .with_hint("list the requests to send, e.g. `requests: [/v2/health/ready]`"),
                );
            }
            let data_sources = s
                .data_sources
                .iter()
                .flatten()
                .filter_map(|d| self.data_source(d))
                .collect();
            let steps = self.steps(name, s.requests.as_deref().unwrap_or_default());
            out.push(Scenario {
                name: name.clone(),
                default_address: s.default_address.as_ref().and_then(|a| a.get().cloned()),
                headers: keyed(s.headers.as_ref()),
                timeout: dur(s.timeout.as_ref()).unwrap_or(Duration::from_secs(30)),
                max_body: s
                    .max_body
                    .as_ref()
                    .and_then(|m| {
                        let text = m.get()?;
                        crate::suite::units::parse_size(text)
                            .inspect_err(|e| {
                                self.push(
                                    Diagnostic::error(m.span, format!("invalid `max-body`: {e}"))
                                        .with_hint(e.hint()),
                                );
                            })
                            .ok()
                    })
                    .unwrap_or(DEFAULT_MAX_BODY),
                think_time: s.think_time.as_ref().and_then(|t| t.get()).map(think_time),
                keepalive: s.keepalive.unwrap_or(true),
                follow_redirects: s.follow_redirects.unwrap_or(true),
                store_cookie: s.store_cookie.unwrap_or(true),
                variables: keyed(s.variables.as_ref()),
                data_sources,
                steps,
            });
        }
        out
    }

    pub(in crate::suite::validate) fn script(&mut self, script: &Located<String>) {
        let Some(text) = script.get() else { return };
        if text.to_ascii_lowercase().ends_with(".jmx") {
            // A plan that could not be imported: its errors are already reported.
            self.incomplete = true;
        } else {
            self.push(
                Diagnostic::error(
                    script.span,
                    format!("scenario scripts are not supported: `{text}`"),
                )
                .with_hint(
                    "perfgate runs HTTP `requests:` scenarios; describe the requests in YAML",
                ),
            );
        }
    }

    pub(in crate::suite::validate) fn data_source(
        &mut self,
        raw: &Located<RawDataSource>,
    ) -> Option<DataSource> {
        let d = raw.get()?;
        let path = self.existing_file(&d.path, "data source")?;
        if d.variable_names.is_none() && !path.is_file() {
            self.unknown_columns = true;
        }
        let delimiter = match d
            .delimiter
            .as_ref()
            .and_then(Located::get)
            .map(String::as_str)
        {
            None => ',',
            Some("tab" | "\\t" | "\t") => '\t',
            Some(text) if text.chars().count() == 1 => text.chars().next().unwrap_or(','),
            Some(text) => {
                let span = d.delimiter.as_ref().map(|l| l.span);
                self.push(
                    Diagnostic::error(span, format!("the delimiter `{text}` is not one character"))
                        .with_hint("write a single character such as `,` or `;`, or `tab`"),
                );
                ','
            }
        };
        let jsonl = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson"));
        let variable_names: Vec<String> = match d.variable_names.as_ref().and_then(Located::get) {
            Some(names) => names
                .split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            // The first line only, of a regular file only: a CSV may be huge, a FIFO endless.
            None if jsonl => {
                let first = path.is_file().then(|| first_line(&path)).flatten();
                match first.map(|line| serde_json::from_str::<serde_json::Value>(&line)) {
                    Some(Ok(serde_json::Value::Object(map))) => map.keys().cloned().collect(),
                    Some(_) => {
                        self.push(
                            Diagnostic::error(d.path.span, format!("the first line of `{}` is not a JSON object", path.display()))
                                .with_hint("a JSON Lines data source has one object per line, e.g. {\"prompt\": \"...\"}; its keys name the variables"),
                        );
                        Vec::new()
                    }
                    None => Vec::new(),
                }
            }
            None => path
                .is_file()
                .then(|| first_line(&path))
                .flatten()
                .map(|h| {
                    h.split(delimiter)
                        .map(|c| c.trim().trim_matches('"').to_owned())
                        .collect()
                })
                .unwrap_or_default(),
        };
        self.runtime_vars.extend(variable_names.iter().cloned());
        Some(DataSource {
            path,
            jsonl,
            delimiter,
            quoted: d.quoted.unwrap_or(false),
            repeat: d.loop_.unwrap_or(true),
            variable_names,
        })
    }

    pub(in crate::suite::validate) fn steps(
        &mut self,
        scenario: &str,
        raw: &[Located<RawRequest>],
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        for item in raw {
            match item.get() {
                Some(r) => steps.extend(self.step(scenario, item.span, r)),
                None => self.incomplete = true,
            }
        }
        steps
    }

    pub(in crate::suite::validate) fn step(
        &mut self,
        scenario: &str,
        span: Span,
        r: &RawRequest,
    ) -> Option<Step> {
        let unsupported = [
            ("while", r.while_.as_ref()),
            ("foreach", r.foreach.as_ref()),
            ("action", r.action.as_ref()),
            ("jsr223", r.jsr223.as_ref()),
        ];
        for (key, value) in unsupported {
            if let Some(value) = value {
                self.push(
                    Diagnostic::error(
                        value.span,
                        format!("`{key}` is JMeter logic that perfgate does not run"),
                    )
                    .with_hint("use `loop`, `transaction`, `include-scenario` or `set-variables`"),
                );
                self.incomplete = true;
                return None;
            }
        }
        let kinds: Vec<&str> = [
            ("url", r.url.is_some()),
            ("include-scenario", r.include_scenario.is_some()),
            ("transaction", r.transaction.is_some()),
            ("loop", r.loop_.is_some()),
            ("set-variables", r.set_variables.is_some()),
            ("if", r.if_.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
        .collect();
        match kinds.as_slice() {
            [] => {
                self.push(
                    Diagnostic::error(span, "a request needs `url`")
                        .with_hint("a step is a request (`url:`) or one of `include-scenario`, `transaction`, `loop`, `set-variables`"),
                );
                self.incomplete = true;
                None
            }
            [one] => {
                if *one != "url" {
                    self.no_request_keys(one, r);
                }
                if r.do_.is_some() && !matches!(*one, "transaction" | "loop") {
                    self.push(Diagnostic::error(
                        span,
                        format!("`do` belongs to `transaction` or `loop`, not to `{one}`"),
                    ));
                }
                match *one {
                    "url" => self
                        .request(scenario, r)
                        .map(|req| Step::Request(Box::new(req))),
                    "include-scenario" => {
                        let target = r.include_scenario.as_ref()?;
                        let name = target.get()?.clone();
                        self.includes
                            .push((scenario.to_owned(), name.clone(), target.span));
                        Some(Step::IncludeScenario { scenario: name })
                    }
                    "transaction" => {
                        let name = r.transaction.as_ref()?.get()?.clone();
                        self.add_label(&name);
                        let steps = self.steps(scenario, r.do_.as_deref().unwrap_or_default());
                        Some(Step::Transaction { name, steps })
                    }
                    "if" => {
                        let loc = r.if_.as_ref()?;
                        let text = loc.get()?;
                        let Some(condition) = Condition::parse(text) else {
                            self.push(
                                Diagnostic::error(loc.span, format!("`{text}` is not a condition perfgate evaluates"))
                                    .with_hint("compare two texts: `\"${model}\" == \"mlp\"` or `${status} != 200` (also inside ${__jexl3(...)}), or write true / false"),
                            );
                            self.incomplete = true;
                            return None;
                        };
                        if r.then.is_none() {
                            self.push(Diagnostic::error(
                                span,
                                "`if` needs a `then:` list of steps",
                            ));
                        }
                        let then = self.steps(scenario, r.then.as_deref().unwrap_or_default());
                        let otherwise =
                            self.steps(scenario, r.else_.as_deref().unwrap_or_default());
                        Some(Step::If {
                            condition,
                            then,
                            otherwise,
                        })
                    }
                    "loop" => {
                        let count = *r.loop_.as_ref()?.get()?;
                        if r.do_.is_none() {
                            self.push(Diagnostic::error(
                                span,
                                "`loop` needs a `do:` list of steps to repeat",
                            ));
                        }
                        let steps = self.steps(scenario, r.do_.as_deref().unwrap_or_default());
                        Some(Step::Loop { count, steps })
                    }
                    _ => {
                        let variables = keyed(r.set_variables.as_ref());
                        self.runtime_vars
                            .extend(variables.iter().map(|(k, _)| k.clone()));
                        Some(Step::SetVariables { variables })
                    }
                }
            }
            [first, second, ..] => {
                self.push(
                    Diagnostic::error(
                        span,
                        format!("a step cannot be both `{first}` and `{second}`"),
                    )
                    .with_hint("split it into two list items"),
                );
                self.incomplete = true;
                None
            }
        }
    }

    /// Request-only keys on a logic block are mistakes (probably bad indentation).
    pub(in crate::suite::validate) fn no_request_keys(&mut self, kind: &str, r: &RawRequest) {
        let spans = [
            ("label", r.label.as_ref().map(|l| l.span)),
            ("method", r.method.as_ref().map(|l| l.span)),
            ("body", r.body.as_ref().map(|l| l.span)),
            ("body-file", r.body_file.as_ref().map(|l| l.span)),
            ("timeout", r.timeout.as_ref().map(|l| l.span)),
        ];
        for (key, span) in spans {
            if let Some(span) = span {
                self.push(
                    Diagnostic::error(span, format!("`{key}` has no effect on a `{kind}` step"))
                        .with_hint(
                            "check the indentation: request keys belong to an item with `url:`",
                        ),
                );
            }
        }
    }

    pub(in crate::suite::validate) fn add_label(&mut self, label: &str) {
        if !self.labels.iter().any(|l| l == label) {
            self.labels.push(label.to_owned());
        }
    }

    pub(in crate::suite::validate) fn request(
        &mut self,
        scenario: &str,
        r: &RawRequest,
    ) -> Option<Request> {
        let url_loc = r.url.as_ref()?;
        let url = url_loc.get()?.clone();
        let lower = url.to_ascii_lowercase();
        if lower.contains("://") {
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                self.push(
                    Diagnostic::error(url_loc.span, format!("unsupported URL scheme in `{url}`"))
                        .with_hint("perfgate sends HTTP; use http:// or https://"),
                );
            }
        } else if !url.starts_with("${") {
            self.relative_urls
                .push((scenario.to_owned(), url.clone(), url_loc.span));
        }
        let label = r
            .label
            .as_ref()
            .and_then(Located::get)
            .cloned()
            .unwrap_or_else(|| self.cx.stable_label(&url));
        self.add_label(&label);
        let llm = self.llm(r);
        let method = match &r.method {
            Some(m) => {
                let text = m.get()?.to_ascii_uppercase();
                self.one_of(m.span, "HTTP method", &text, METHODS);
                text
            }
            // Completions are posted.
            None if llm.is_some() => "POST".to_owned(),
            None => "GET".to_owned(),
        };
        let body = match (&r.body, &r.body_file) {
            (Some(body), Some(file)) => {
                self.push(
                    Diagnostic::error(
                        file.span,
                        "a request has either `body` or `body-file`, not both",
                    )
                    .with_label(format!("`body` is at line {}", body.span.line)),
                );
                None
            }
            (Some(body), None) => body.get().and_then(|b| match b {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(Body::Text(s.clone())),
                v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_)) => {
                    Some(Body::Structured(v.clone()))
                }
                other => Some(Body::Text(other.to_string())),
            }),
            (None, Some(file)) => self.existing_file(file, "body file").map(Body::File),
            (None, None) => None,
        };
        let mut upload_files = Vec::new();
        for upload in r.upload_files.iter().flatten() {
            let Some(u) = upload.get() else { continue };
            let Some(path) = self.existing_file(&u.path, "upload file") else {
                continue;
            };
            upload_files.push(Upload {
                param: u.param.get().cloned().unwrap_or_default(),
                path,
                mime_type: u.mime_type.clone(),
            });
        }
        let mut assertions = Vec::new();
        for a in r.assert.iter().flatten() {
            let Some(a) = a.get() else { continue };
            let regexp = a.regexp.unwrap_or(true);
            let mut patterns = Vec::new();
            for p in a.contains.iter().flatten() {
                let text = if regexp {
                    self.regex(p, "`assert`")
                } else {
                    p.get().cloned()
                };
                patterns.extend(text);
            }
            assertions.push(Assertion {
                subject: a
                    .subject
                    .as_ref()
                    .and_then(|s| s.get().copied())
                    .unwrap_or(AssertSubject::Body),
                patterns,
                regexp,
                not: a.not.unwrap_or(false),
                assume_success: a.assume_success.unwrap_or(false),
            });
        }
        let mut jsonpath_assertions = Vec::new();
        for a in r.assert_jsonpath.iter().flatten() {
            let Some(a) = a.get() else { continue };
            let Some(jsonpath) = self.jsonpath(&a.jsonpath) else {
                continue;
            };
            jsonpath_assertions.push(JsonPathAssertion {
                jsonpath,
                expected_value: a.expected_value.clone(),
                validate: a.validate.unwrap_or(a.expected_value.is_some()),
                invert: a.invert.unwrap_or(false),
                expect_null: a.expect_null.unwrap_or(false),
                regexp: a.regexp.unwrap_or(false),
            });
        }
        let mut extractors = Vec::new();
        for (var, e) in r.extract_jsonpath.iter().flat_map(Keyed::iter) {
            self.runtime_vars.insert(var.to_owned());
            let Some(e) = e.get() else { continue };
            let Some(jsonpath) = self.jsonpath(&e.jsonpath) else {
                continue;
            };
            extractors.push(Extractor::JsonPath {
                variable: var.to_owned(),
                jsonpath,
                default: e.default.clone(),
                match_no: e.match_no.unwrap_or(1),
            });
        }
        for (var, e) in r.extract_regexp.iter().flat_map(Keyed::iter) {
            self.runtime_vars.insert(var.to_owned());
            let Some(e) = e.get() else { continue };
            let Some(regexp) = self.regex(&e.regexp, "`extract-regexp`") else {
                continue;
            };
            extractors.push(Extractor::Regexp {
                variable: var.to_owned(),
                regexp,
                template: e
                    .template
                    .as_ref()
                    .and_then(|t| t.get().cloned())
                    .unwrap_or_else(|| "$1$".into()),
                default: e.default.clone(),
                match_no: e.match_no.unwrap_or(1),
                subject: e
                    .subject
                    .as_ref()
                    .and_then(|s| s.get().copied())
                    .unwrap_or(AssertSubject::Body),
            });
        }
        Some(Request {
            label: label.into(),
            url,
            method,
            headers: keyed(r.headers.as_ref()),
            body,
            upload_files,
            think_time: r.think_time.as_ref().and_then(|t| t.get()).map(think_time),
            timeout: dur(r.timeout.as_ref()),
            follow_redirects: r.follow_redirects,
            assertions,
            jsonpath_assertions,
            extractors,
            llm,
        })
    }

    /// `llm:` and what goes with it (`prompt`, `messages`, `prompt-tokens`, `goodput`).
    fn llm(&mut self, r: &RawRequest) -> Option<Llm> {
        let given: Vec<(&str, Span)> = [
            ("prompt", r.prompt.as_ref().map(|p| p.span)),
            ("messages", r.messages.as_ref().map(|p| p.span)),
            ("prompt-tokens", r.prompt_tokens.as_ref().map(|p| p.span)),
            ("goodput", r.goodput.as_ref().map(|p| p.span)),
        ]
        .into_iter()
        .filter_map(|(k, s)| Some((k, s?)))
        .collect();
        let Some(kind) = &r.llm else {
            for (key, span) in given {
                self.push(
                    Diagnostic::error(span, format!("`{key}` belongs to an LLM request"))
                        .with_hint(
                            "add `llm: openai-chat` (or `openai-completions`) to the request",
                        ),
                );
            }
            return None;
        };
        let api = match kind.get()?.as_str() {
            "openai-chat" => LlmApi::Chat,
            "openai-completions" => LlmApi::Completions,
            other => {
                self.one_of(kind.span, "LLM API", other, LLM_APIS);
                return None;
            }
        };
        let prompts: Vec<&(&str, Span)> = given.iter().filter(|(k, _)| *k != "goodput").collect();
        if let [first, second, ..] = prompts.as_slice() {
            self.push(
                Diagnostic::error(
                    second.1,
                    format!("a request has one of `prompt`, `messages` and `prompt-tokens`, not `{}` and `{}`", first.0, second.0),
                )
                .with_label(format!("`{}` is at line {}", first.0, first.1.line)),
            );
        }
        if let Some(body) = &r.body
            && body.get().is_some_and(|b| !b.is_object() && !b.is_null())
        {
            self.push(
                Diagnostic::error(
                    body.span,
                    "an LLM request's body is a map (the JSON it posts)",
                )
                .with_hint("e.g. body: {model: my-model, max_tokens: 128, stream: true}"),
            );
        }
        let prompt = if let Some(text) = r.prompt.as_ref().and_then(Located::get) {
            Some(Prompt::Text(text.clone()))
        } else if let Some(messages) = &r.messages {
            let value = messages.get()?;
            let variable = value.as_str().is_some_and(|s| s.contains("${"));
            if api == LlmApi::Completions || !(value.is_array() || variable) {
                let why = if api == LlmApi::Completions {
                    "`messages` is for `llm: openai-chat`; a completions request takes `prompt`"
                } else {
                    "`messages` is a list of {role, content} maps, or a ${variable} holding one as JSON"
                };
                self.push(Diagnostic::error(messages.span, why));
            }
            Some(Prompt::Messages(value.clone()))
        } else if let Some(tokens) = &r.prompt_tokens {
            let n = *tokens.get()?;
            if n == 0 {
                self.push(
                    Diagnostic::error(tokens.span, "`prompt-tokens` must be at least 1")
                        .with_hint("e.g. prompt-tokens: 512"),
                );
            }
            Some(Prompt::Synthetic { tokens: n })
        } else {
            None
        };
        let goodput = r.goodput.as_ref().and_then(Located::get).map(|g| Goodput {
            ttft: dur(g.ttft.as_ref()),
            tpot: dur(g.tpot.as_ref()),
            itl: dur(g.itl.as_ref()),
            e2e: dur(g.e2e.as_ref()),
        });
        if let (Some(g), Some(loc)) = (&goodput, &r.goodput)
            && *g == Goodput::default()
        {
            self.push(
                Diagnostic::error(loc.span, "`goodput` names no SLO").with_hint(
                    "give at least one of ttft, tpot, itl, e2e, e.g. {ttft: 500ms, tpot: 50ms}",
                ),
            );
        }
        Some(Llm {
            api,
            prompt,
            goodput,
        })
    }

    pub(in crate::suite::validate) fn jsonpath(&mut self, loc: &Located<String>) -> Option<String> {
        let text = loc.get()?;
        if !text.trim_start().starts_with('$') {
            self.push(
                Diagnostic::error(loc.span, format!("`{text}` is not a JSONPath")).with_hint(
                    "JSONPath expressions start at the root `$`, e.g. `$.outputs[0].data`",
                ),
            );
        }
        Some(text.clone())
    }

    pub(in crate::suite::validate) fn check_urls(&mut self) {
        // A scenario may use relative URLs when every scenario that includes it has an address.
        let mut with_address = self.scenarios_with_address.clone();
        loop {
            let before = with_address.len();
            for (from, to, _) in &self.includes {
                if with_address.contains(from) {
                    with_address.insert(to.clone());
                }
            }
            if with_address.len() == before {
                break;
            }
        }
        let missing: Vec<_> = self
            .relative_urls
            .iter()
            .filter(|(scenario, _, _)| !with_address.contains(scenario))
            .cloned()
            .collect();
        for (scenario, url, span) in missing {
            self.push(
                Diagnostic::error(span, format!("relative URL `{url}` but scenario `{scenario}` has no `default-address`"))
                    .with_hint("add `default-address: http://127.0.0.1:${PORT}` to the scenario, or write an absolute URL"),
            );
        }
    }

    pub(in crate::suite::validate) fn check_include_cycles(&mut self, scenarios: &[Scenario]) {
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        let all: Vec<String> = self
            .cx
            .effective
            .get("scenarios")
            .and_then(Node::as_map)
            .map(|m| m.iter().map(|e| e.key.clone()).collect())
            .unwrap_or_default();
        let includes = self.includes.clone();
        for (from, to, span) in &includes {
            if !all.contains(to) {
                self.push(
                    Diagnostic::error(*span, format!("unknown scenario `{to}`"))
                        .with_suggestion(to, all.iter().map(String::as_str))
                        .with_hint(format!("scenarios in this suite: {}", all.join(", "))),
                );
                continue;
            }
            // Follow includes from `to`; reaching `from` closes a cycle.
            let mut path = vec![from.clone(), to.clone()];
            let mut frontier = vec![to.clone()];
            let mut seen = BTreeSet::new();
            while let Some(next) = frontier.pop() {
                if !seen.insert(next.clone()) {
                    continue;
                }
                for (a, b, _) in includes.iter().filter(|(a, _, _)| *a == next) {
                    if b == from {
                        path.push(from.clone());
                        self.push(
                            Diagnostic::error(
                                *span,
                                format!("include cycle: {}", path.join(" → ")),
                            )
                            .with_hint(
                                "a scenario cannot include itself, directly or through others",
                            ),
                        );
                        frontier.clear();
                        break;
                    }
                    let _ = a;
                    frontier.push(b.clone());
                }
            }
        }
        let _ = names;
    }
}

pub(in crate::suite::validate) fn think_time(t: &ThinkTimeValue) -> ThinkTime {
    match *t {
        ThinkTimeValue::Constant(time) => ThinkTime::Constant { time },
        ThinkTimeValue::Uniform { mean, dev } => ThinkTime::Uniform { mean, dev },
        ThinkTimeValue::Gaussian { mean, dev } => ThinkTime::Gaussian { mean, dev },
        ThinkTimeValue::Poisson { mean, offset } => ThinkTime::Poisson { mean, offset },
    }
}

/// The Taurus-style testcase name: `avg-rt of infer>150ms for 10s`.
/// The first line of a file (at most 64 KiB of it), without its line end.
pub(in crate::suite::validate) fn first_line(path: &std::path::Path) -> Option<String> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(file.take(64 * 1024))
        .read_line(&mut line)
        .ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, suite_with};

    #[test]
    fn labels_default_to_the_url_as_written() {
        let (suite, messages) = check(
            "settings: {ports: [PORT]}\nexecution: [{scenario: s, concurrency: 1, hold-for: 1s}]\nscenarios: {s: {requests: ['http://127.0.0.1:${PORT}/a', {url: 'http://127.0.0.1:${PORT}/b', label: b}]}}\n",
        );
        let suite = suite.unwrap_or_else(|| panic!("{messages:?}"));
        assert_eq!(suite.labels, ["http://127.0.0.1:${PORT}/a", "b"]);
    }

    #[test]
    fn bad_methods_schemes_and_missing_data_are_errors() {
        let (_, messages) = check(
            "execution: [{scenario: s, concurrency: 1, hold-for: 1s}]\nscenarios: {s: {data-sources: [nope.csv], requests: [{url: 'ftp://h/x', method: FETCH}]}}\n",
        );
        for expected in [
            "unsupported URL scheme in `ftp://h/x`",
            "data source `nope.csv` does not exist",
        ] {
            assert!(
                messages.iter().any(|m| m.contains(expected)),
                "{expected}: {messages:?}"
            );
        }
        assert!(messages.iter().any(|m| m.contains("FETCH")), "{messages:?}");
    }

    #[test]
    fn jmeter_logic_is_named() {
        let (_, messages) = check(&suite_with("").replace(
            "requests: [{url: 'http://127.0.0.1:9/x', label: x}]",
            "requests: [{while: 'x', do: []}]",
        ));
        assert!(
            messages
                .iter()
                .any(|m| m.contains("`while` is JMeter logic")),
            "{messages:?}"
        );
        // `if` takes one comparison; anything else says what it takes.
        let (_, messages) = check(&suite_with("").replace(
            "requests: [{url: 'http://127.0.0.1:9/x', label: x}]",
            "requests: [{if: 'x', then: []}]",
        ));
        assert!(
            messages
                .iter()
                .any(|m| m.contains("`x` is not a condition perfgate evaluates")),
            "{messages:?}"
        );
        let (suite, messages) = check(&suite_with("").replace(
            "requests: [{url: 'http://127.0.0.1:9/x', label: x}]",
            "requests: [{if: '\"x\" != \"y\"', then: ['http://127.0.0.1:9/x'], else: ['http://127.0.0.1:9/y']}]",
        ));
        assert!(messages.is_empty(), "{messages:?}");
        let steps = &suite.unwrap().scenarios[0].steps;
        assert!(
            matches!(&steps[0], crate::suite::model::Step::If { then, otherwise, .. } if then.len() == 1 && otherwise.len() == 1),
            "{steps:?}"
        );
    }
}
