//! A JMeter plan as perfgate scenarios: each thread group becomes a scenario (a YAML map in
//! the suite's own tree, located at the plan's lines) and its load settings; JMeter
//! properties and functions are resolved first. Every element perfgate does not run is an
//! error naming it, its `testname` and its line; disabled elements are skipped.

use std::collections::BTreeMap;

use super::xml::{Element, Prop};
use crate::suite::diagnostics::Diagnostic;
use crate::suite::node::{Entry, FileId, Kind, Node, Span};

/// Which part of the test a thread group is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `SetupThreadGroup`: before the main load.
    Setup,
    Main,
    /// `PostThreadGroup`: after it.
    Teardown,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Self::Setup => "setup",
            Self::Main => "main",
            Self::Teardown => "teardown",
        }
    }
}

/// A thread group's own load: JMeter's threads, ramp-up, loops (per thread; `None`: forever),
/// and with the scheduler, duration and delay (seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    pub threads: u32,
    pub ramp_up: f64,
    pub loops: Option<u64>,
    pub duration: Option<f64>,
    pub delay: Option<f64>,
}

/// A thread group as a perfgate scenario.
#[derive(Clone, Debug)]
pub struct Group {
    pub phase: Phase,
    pub name: String,
    pub load: Load,
    /// The scenario map: `requests`, `variables`, `headers`, `default-address`, ...
    pub scenario: Node,
    pub line: u32,
}

/// Resolves JMeter functions and properties in a plan's text.
#[derive(Debug)]
pub struct Resolver<'a> {
    pub properties: &'a BTreeMap<String, String>,
}

impl Resolver<'_> {
    /// `${__P(name,default)}`, `${__property(name,,default)}` replaced; `${var}` kept for
    /// run time. Any other function is an error naming it.
    pub fn resolve(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("${__") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let Some(end) = matching_brace(after) else {
                return Err(format!("unterminated JMeter function in `{text}`"));
            };
            let call = &after[..end];
            let (name, args) = match call.find('(') {
                Some(open) if call.ends_with(')') => {
                    (&call[..open], &call[open + 1..call.len() - 1])
                }
                _ => (call, ""),
            };
            let args: Vec<String> = split_args(args)
                .into_iter()
                .map(|a| self.resolve(&a))
                .collect::<Result<_, _>>()?;
            let value = match name {
                "__P" => self.property(&args, 1)?,
                "__property" => self.property(&args, 2)?,
                other => {
                    return Err(format!(
                        "the JMeter function `{other}` is not supported (only __P and __property, resolved when the suite loads)"
                    ));
                }
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `name[, ..., default]`: the property, else its default (argument `default_at`).
    fn property(&self, args: &[String], default_at: usize) -> Result<String, String> {
        let name = args.first().map(|a| a.trim()).unwrap_or_default();
        if let Some(v) = self.properties.get(name) {
            return Ok(v.clone());
        }
        match args.get(default_at) {
            Some(default) => Ok(default.clone()),
            None => Err(format!(
                "the JMeter property `{name}` is not set and has no default: set it in `modules.jmeter.properties`, the scenario's `properties`, or with -o modules.jmeter.properties.{name}=VALUE"
            )),
        }
    }
}

/// The index of the `}` that closes a `${` whose body starts `text` (nested `${...}` count).
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// JMeter function arguments: split at commas outside nested `${...}` and `(...)`; `\,` is a
/// literal comma.
fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                current.push(',');
                chars.next();
            }
            '(' | '{' => {
                depth += 1;
                current.push(c);
            }
            ')' | '}' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => args.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    args.push(current);
    args
}

/// Builds located YAML nodes for one plan file.
struct Builder<'a> {
    file: FileId,
    resolver: Resolver<'a>,
    diags: Vec<Diagnostic>,
    /// What the import approximates (`import-jmx` prints them as comments).
    notes: Vec<String>,
}

impl Builder<'_> {
    fn note(&mut self, line: u32, text: String) {
        let note = format!("line {line}: {text}");
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    fn span(&self, line: u32) -> Span {
        Span {
            file: self.file,
            line,
            col: 1,
            len: 1,
        }
    }

    fn str(&self, line: u32, s: &str) -> Node {
        Node::new(Kind::Str(s.to_owned()), self.span(line))
    }

    fn map(&self, line: u32, entries: Vec<(&str, Node)>) -> Node {
        let span = self.span(line);
        Node::new(
            Kind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| Entry {
                        key: k.to_owned(),
                        key_span: span,
                        value: v,
                    })
                    .collect(),
            ),
            span,
        )
    }

    fn seq(&self, line: u32, items: Vec<Node>) -> Node {
        Node::new(Kind::Seq(items), self.span(line))
    }

    fn error(&mut self, line: u32, message: String, hint: &str) {
        let mut d = Diagnostic::error(Some(self.span(line)), message);
        if !hint.is_empty() {
            d = d.with_hint(hint.to_owned());
        }
        self.diags.push(d);
    }

    /// A property's text with functions resolved (an error is reported, the text kept).
    fn text(&mut self, line: u32, raw: &str) -> String {
        match self.resolver.resolve(raw) {
            Ok(s) => s,
            Err(why) => {
                self.error(line, why, "");
                raw.to_owned()
            }
        }
    }

    fn prop_text(&mut self, e: &Element, name: &str) -> Option<String> {
        let line = e
            .props
            .iter()
            .find(|p| p.name == name)
            .map_or(e.line, |p| p.line);
        let raw = e.prop(name)?;
        Some(self.text(line, raw)).filter(|s| !s.trim().is_empty())
    }

    fn nested_text(&mut self, p: &Prop, name: &str) -> Option<String> {
        let child = p.child(name)?;
        let line = child.line;
        let raw = child.value.clone();
        Some(self.text(line, &raw)).filter(|s| !s.trim().is_empty())
    }

    fn unsupported(&mut self, e: &Element, what: &str) {
        let name = if e.testname.is_empty() {
            String::new()
        } else {
            format!(" `{}`", e.testname)
        };
        self.error(
            e.line,
            format!("the JMeter element <{}>{name} is not supported{what}", e.tag),
            "disable it in the plan (enabled=\"false\"), or describe this part in YAML (`perfgate import-jmx` prints the plan as a perfgate scenario)",
        );
    }
}

/// HTTP Request Defaults: scheme, host, port, path prefix, timeouts.
#[derive(Clone, Debug, Default)]
struct Defaults {
    protocol: Option<String>,
    domain: Option<String>,
    port: Option<String>,
    timeout_ms: Option<String>,
}

/// What applies to a thread group's samplers from the plan and group levels.
#[derive(Clone, Debug, Default)]
struct Scope {
    defaults: Defaults,
    headers: Vec<(String, String)>,
    variables: Vec<(String, String)>,
    cookies: bool,
    data_sources: Vec<Node>,
    think: Option<Node>,
}

/// What an import made: the thread groups as scenarios (in plan order), and what it
/// approximates.
#[derive(Debug)]
pub struct Imported {
    pub groups: Vec<Group>,
    pub notes: Vec<String>,
}

/// Imports a plan, or gives the diagnostics.
pub fn import(
    tree: &[Element],
    file: FileId,
    properties: &BTreeMap<String, String>,
) -> Result<Imported, Vec<Diagnostic>> {
    let mut b = Builder {
        file,
        resolver: Resolver { properties },
        diags: Vec::new(),
        notes: Vec::new(),
    };
    let mut groups = Vec::new();
    for plan in tree.iter().filter(|e| e.enabled) {
        if plan.tag != "TestPlan" {
            b.unsupported(plan, " at the top of a plan");
            continue;
        }
        let mut scope = Scope {
            variables: arguments(&mut b, plan.nested("TestPlan.user_defined_variables")),
            ..Scope::default()
        };
        // Configuration first (JMeter applies it to every thread group whatever its place).
        for e in plan.children.iter().filter(|e| e.enabled) {
            config(&mut b, e, &mut scope);
        }
        for e in plan.children.iter().filter(|e| e.enabled) {
            let phase = match e.tag.as_str() {
                "ThreadGroup" => Phase::Main,
                "SetupThreadGroup" => Phase::Setup,
                "PostThreadGroup" => Phase::Teardown,
                _ if is_config(&e.tag) => continue,
                _ => {
                    b.unsupported(e, " at the test plan level");
                    continue;
                }
            };
            groups.push(thread_group(&mut b, e, phase, &scope));
        }
    }
    if b.diags.is_empty() {
        Ok(Imported {
            groups,
            notes: b.notes,
        })
    } else {
        Err(b.diags)
    }
}

fn is_config(tag: &str) -> bool {
    matches!(
        tag,
        "Arguments"
            | "ConfigTestElement"
            | "HeaderManager"
            | "CookieManager"
            | "CSVDataSet"
            | "UniformRandomTimer"
            | "ConstantTimer"
            | "ResultCollector"
    )
}

/// `Arguments.arguments`: (name, value) pairs.
fn arguments(b: &mut Builder<'_>, p: Option<&Prop>) -> Vec<(String, String)> {
    let Some(collection) = p.and_then(|p| p.child("Arguments.arguments")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for arg in &collection.nested {
        let name = arg.get("Argument.name").unwrap_or(&arg.name).to_owned();
        let value = arg.get("Argument.value").unwrap_or_default().to_owned();
        let value = b.text(arg.line, &value);
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

/// Applies a configuration element to `scope`.
fn config(b: &mut Builder<'_>, e: &Element, scope: &mut Scope) {
    match e.tag.as_str() {
        "Arguments" => {
            let vars = arguments(
                b,
                Some(&Prop {
                    kind: String::new(),
                    name: String::new(),
                    value: String::new(),
                    line: e.line,
                    nested: e.props.clone(),
                }),
            );
            scope.variables.extend(vars);
        }
        "ConfigTestElement" => {
            scope.defaults = Defaults {
                protocol: b.prop_text(e, "HTTPSampler.protocol"),
                domain: b.prop_text(e, "HTTPSampler.domain"),
                port: b.prop_text(e, "HTTPSampler.port"),
                timeout_ms: b.prop_text(e, "HTTPSampler.response_timeout"),
            };
        }
        "HeaderManager" => scope.headers.extend(headers(b, e)),
        "CookieManager" => scope.cookies = true,
        "CSVDataSet" => {
            let path = b.prop_text(e, "filename").unwrap_or_default();
            let mut entries = vec![("path", b.str(e.line, &path))];
            if let Some(names) = b.prop_text(e, "variableNames") {
                entries.push(("variable-names", b.str(e.line, &names)));
            }
            if let Some(d) = b.prop_text(e, "delimiter") {
                entries.push(("delimiter", b.str(e.line, &d)));
            }
            let recycle =
                e.flag("recycle").unwrap_or(true) && !e.flag("stopThread").unwrap_or(false);
            entries.push(("loop", Node::new(Kind::Bool(recycle), b.span(e.line))));
            scope.data_sources.push(b.map(e.line, entries));
        }
        "UniformRandomTimer" | "ConstantTimer" => scope.think = Some(timer(b, e)),
        "ResultCollector" => {}
        _ => {}
    }
}

fn headers(b: &mut Builder<'_>, e: &Element) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(list) = e.nested("HeaderManager.headers") {
        for h in &list.nested {
            let name = h.get("Header.name").unwrap_or_default().to_owned();
            let value = h.get("Header.value").unwrap_or_default().to_owned();
            let value = b.text(h.line, &value);
            if !name.is_empty() {
                out.push((name, value));
            }
        }
    }
    out
}

/// A timer as a think time: constant `delay` ms, or uniform `delay` + up to `range` ms.
fn timer(b: &mut Builder<'_>, e: &Element) -> Node {
    let ms = |s: Option<String>| s.and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0);
    let delay = ms(b.prop_text(e, "ConstantTimer.delay"));
    if e.tag == "ConstantTimer" {
        return b.str(e.line, &format!("{delay}ms"));
    }
    let range = ms(b.prop_text(e, "RandomTimer.range"));
    // JMeter: delay + U(0, range); perfgate's uniform is mean ± dev.
    let mean = delay + range / 2.0;
    let dev = range / 2.0;
    b.str(e.line, &format!("uniform({mean}ms, {dev}ms)"))
}

fn load_of(b: &mut Builder<'_>, e: &Element) -> Load {
    let number = |s: Option<String>| s.and_then(|v| v.trim().parse::<f64>().ok());
    let threads = number(b.prop_text(e, "ThreadGroup.num_threads")).unwrap_or(1.0);
    let ramp_up = number(b.prop_text(e, "ThreadGroup.ramp_time")).unwrap_or(0.0);
    let controller = e.nested("ThreadGroup.main_controller").cloned();
    let loops = controller.and_then(|c| {
        let forever = c.get("LoopController.continue_forever") == Some("true");
        let text = b.nested_text(&c, "LoopController.loops");
        match text.and_then(|t| t.trim().parse::<i64>().ok()) {
            Some(n) if n >= 0 => Some(u64::try_from(n).unwrap_or(0)),
            Some(_) => None,
            None if forever => None,
            None => Some(1),
        }
    });
    let scheduler = e.flag("ThreadGroup.scheduler").unwrap_or(false);
    let duration = scheduler
        .then(|| number(b.prop_text(e, "ThreadGroup.duration")))
        .flatten();
    let delay = scheduler
        .then(|| number(b.prop_text(e, "ThreadGroup.delay")))
        .flatten();
    Load {
        threads: threads.max(0.0).round() as u32,
        ramp_up: ramp_up.max(0.0),
        loops,
        duration,
        delay,
    }
}

fn thread_group(b: &mut Builder<'_>, e: &Element, phase: Phase, plan: &Scope) -> Group {
    let mut scope = plan.clone();
    for child in e.children.iter().filter(|c| c.enabled && is_config(&c.tag)) {
        config(b, child, &mut scope);
    }
    let name = label(b, e, &scope);
    let load = load_of(b, e);
    let requests = steps(b, &e.children, &scope);
    let mut entries = Vec::new();
    if let Some(domain) = &scope.defaults.domain {
        let protocol = scope
            .defaults
            .protocol
            .clone()
            .unwrap_or_else(|| "http".to_owned());
        let port = scope
            .defaults
            .port
            .as_ref()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        entries.push((
            "default-address",
            b.str(e.line, &format!("{protocol}://{domain}{port}")),
        ));
    }
    if let Some(ms) = scope
        .defaults
        .timeout_ms
        .as_ref()
        .and_then(|t| t.trim().parse::<u64>().ok())
    {
        entries.push(("timeout", b.str(e.line, &format!("{ms}ms"))));
    }
    entries.push((
        "store-cookie",
        Node::new(Kind::Bool(scope.cookies), b.span(e.line)),
    ));
    if !scope.headers.is_empty() {
        let headers = scope
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), b.str(e.line, v)))
            .collect();
        entries.push(("headers", b.map(e.line, headers)));
    }
    if !scope.variables.is_empty() {
        let vars = scope
            .variables
            .iter()
            .map(|(k, v)| (k.as_str(), b.str(e.line, v)))
            .collect();
        entries.push(("variables", b.map(e.line, vars)));
    }
    if let Some(think) = &scope.think {
        entries.push(("think-time", think.clone()));
    }
    if !scope.data_sources.is_empty() {
        entries.push(("data-sources", b.seq(e.line, scope.data_sources.clone())));
    }
    entries.push(("requests", b.seq(e.line, requests)));
    let scenario = b.map(e.line, entries);
    Group {
        phase,
        name,
        load,
        scenario,
        line: e.line,
    }
}

/// Samplers and controllers as perfgate request steps.
fn steps(b: &mut Builder<'_>, elements: &[Element], scope: &Scope) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    for e in elements.iter().filter(|e| e.enabled) {
        match e.tag.as_str() {
            "HTTPSamplerProxy" => out.push(sampler(b, e, scope)),
            "TransactionController" => {
                let inner = steps(b, &e.children, scope);
                let name = label(b, e, scope);
                out.push(b.map(
                    e.line,
                    vec![
                        ("transaction", b.str(e.line, &name)),
                        ("do", b.seq(e.line, inner)),
                    ],
                ));
            }
            "LoopController" => {
                let loops = b
                    .prop_text(e, "LoopController.loops")
                    .and_then(|l| l.trim().parse::<u64>().ok());
                let Some(loops) = loops else {
                    b.unsupported(e, ": a nested loop needs a fixed count");
                    continue;
                };
                let inner = steps(b, &e.children, scope);
                out.push(b.map(
                    e.line,
                    vec![
                        (
                            "loop",
                            Node::new(
                                Kind::Int(i64::try_from(loops).unwrap_or(i64::MAX)),
                                b.span(e.line),
                            ),
                        ),
                        ("do", b.seq(e.line, inner)),
                    ],
                ));
            }
            "IfController" => {
                // The expression inside __jexl3/__groovy is evaluated at run time; properties
                // in it are resolved now.
                let raw = e.prop("IfController.condition").unwrap_or_default();
                let inner = crate::suite::model::Condition::unwrap(raw).to_owned();
                let condition = b.text(e.line, &inner);
                if crate::suite::model::Condition::parse(&condition).is_none() {
                    b.unsupported(
                        e,
                        &format!(
                            ": its condition `{condition}` is not a comparison perfgate evaluates (\"${{a}}\" == \"b\", !=, true, false)"
                        ),
                    );
                    continue;
                }
                let inner = steps(b, &e.children, scope);
                out.push(b.map(
                    e.line,
                    vec![
                        ("if", b.str(e.line, &condition)),
                        ("then", b.seq(e.line, inner)),
                    ],
                ));
            }
            "TestAction" => {
                // A pause: the time the previous request's think time waits.
                let ms = b
                    .prop_text(e, "ActionProcessor.duration")
                    .unwrap_or_default();
                let action = e.prop("ActionProcessor.action").unwrap_or("1");
                if action.trim() != "1" {
                    b.unsupported(e, ": only the pause action is");
                    continue;
                }
                b.note(
                    e.line,
                    format!(
                        "the pause `{}` is the think time of the request before it",
                        e.testname
                    ),
                );
                match out.last_mut().and_then(|n| match &mut n.kind {
                    Kind::Map(entries) => Some(entries),
                    _ => None,
                }) {
                    Some(entries) => entries.push(Entry {
                        key: "think-time".to_owned(),
                        key_span: b.span(e.line),
                        value: b.str(e.line, &format!("{}ms", ms.trim())),
                    }),
                    None => b.unsupported(e, ": a pause before any request"),
                }
            }
            tag if is_config(tag) => {}
            "ResponseAssertion" | "JSONPostProcessor" | "RegexExtractor" => {
                b.unsupported(e, ": put it under a sampler");
            }
            _ => b.unsupported(e, ""),
        }
    }
    out
}

/// An element's name as a label: functions resolved, the plan's variables (static in
/// JMeter's user-defined variables) substituted, surrounding space trimmed.
fn label(b: &mut Builder<'_>, e: &Element, scope: &Scope) -> String {
    let mut text = b.text(e.line, &e.testname);
    for (name, value) in &scope.variables {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    text.trim().to_owned()
}

fn sampler(b: &mut Builder<'_>, e: &Element, scope: &Scope) -> Node {
    let label = label(b, e, scope);
    let path = b
        .prop_text(e, "HTTPSampler.path")
        .unwrap_or_else(|| "/".to_owned());
    let method = b
        .prop_text(e, "HTTPSampler.method")
        .unwrap_or_else(|| "GET".to_owned());
    let domain = b.prop_text(e, "HTTPSampler.domain");
    let port = b.prop_text(e, "HTTPSampler.port");
    let protocol = b.prop_text(e, "HTTPSampler.protocol");
    // A sampler's own domain, port or protocol make an absolute URL (with the defaults for
    // the rest); otherwise the path is relative to the scenario's default address.
    let url = if path.contains("://") {
        path.clone()
    } else if domain.is_some() || port.is_some() || protocol.is_some() {
        let d = &scope.defaults;
        let domain = domain
            .or(d.domain.clone())
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let protocol = protocol
            .or(d.protocol.clone())
            .unwrap_or_else(|| "http".to_owned());
        let port = port
            .or(d.port.clone())
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("{protocol}://{domain}{port}{slash}{path}")
    } else {
        path.clone()
    };
    let mut entries = vec![
        ("url", b.str(e.line, &url)),
        ("label", b.str(e.line, &label)),
        ("method", b.str(e.line, &method.to_ascii_uppercase())),
    ];
    // Arguments: a raw body, or query/form parameters.
    let raw = e.flag("HTTPSampler.postBodyRaw").unwrap_or(false);
    let args = arguments(b, e.nested("HTTPsampler.Arguments"));
    if raw {
        // The raw body is the one argument's value (it has no name).
        let value = e
            .nested("HTTPsampler.Arguments")
            .and_then(|p| p.child("Arguments.arguments"))
            .and_then(|c| c.nested.first())
            .map(|a| {
                (
                    a.line,
                    a.get("Argument.value").unwrap_or_default().to_owned(),
                )
            });
        let body = match value {
            Some((line, text)) => b.text(line, &text),
            None => String::new(),
        };
        entries.push(("body", b.str(e.line, &body)));
    } else if !args.is_empty() {
        let query: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if method.eq_ignore_ascii_case("GET") {
            let sep = if url.contains('?') { '&' } else { '?' };
            entries[0] = (
                "url",
                b.str(e.line, &format!("{url}{sep}{}", query.join("&"))),
            );
        } else {
            let form = args
                .iter()
                .map(|(k, v)| (k.as_str(), b.str(e.line, v)))
                .collect();
            entries.push(("body", b.map(e.line, form)));
            entries.push((
                "headers",
                b.map(
                    e.line,
                    vec![(
                        "Content-Type",
                        b.str(e.line, "application/x-www-form-urlencoded"),
                    )],
                ),
            ));
        }
    }
    if let Some(files) = e
        .nested("HTTPsampler.Files")
        .and_then(|f| f.child("HTTPFileArgs.files"))
    {
        let mut uploads = Vec::new();
        for f in &files.nested {
            let path = b.nested_text(f, "File.path").unwrap_or_default();
            let param = b
                .nested_text(f, "File.paramname")
                .unwrap_or_else(|| "file".to_owned());
            let mut u = vec![
                ("param", b.str(f.line, &param)),
                ("path", b.str(f.line, &path)),
            ];
            if let Some(mime) = b.nested_text(f, "File.mimetype") {
                u.push(("mime-type", b.str(f.line, &mime)));
            }
            uploads.push(b.map(f.line, u));
        }
        if !uploads.is_empty() {
            entries.push(("upload-files", b.seq(e.line, uploads)));
        }
    }
    if let Some(follow) = e.flag("HTTPSampler.follow_redirects") {
        entries.push((
            "follow-redirects",
            Node::new(Kind::Bool(follow), b.span(e.line)),
        ));
    }
    // Children: headers, assertions, extractors, timers.
    let mut asserts = Vec::new();
    let mut jsonpath = Vec::new();
    let mut regexps = Vec::new();
    for c in e.children.iter().filter(|c| c.enabled) {
        match c.tag.as_str() {
            "HeaderManager" => {
                let hs = headers(b, c);
                let map = hs
                    .iter()
                    .map(|(k, v)| (k.as_str(), b.str(c.line, v)))
                    .collect();
                entries.push(("headers", b.map(c.line, map)));
            }
            "ResponseAssertion" => asserts.push(assertion(b, c)),
            "JSONPostProcessor" => {
                let names = b
                    .prop_text(c, "JSONPostProcessor.referenceNames")
                    .unwrap_or_default();
                let paths = b
                    .prop_text(c, "JSONPostProcessor.jsonPathExprs")
                    .unwrap_or_default();
                let default = b.prop_text(c, "JSONPostProcessor.defaultValues");
                for (name, path) in names.split(';').zip(paths.split(';')) {
                    let mut x = vec![("jsonpath", b.str(c.line, path.trim()))];
                    if let Some(d) = &default {
                        x.push(("default", b.str(c.line, d)));
                    }
                    jsonpath.push((name.trim().to_owned(), b.map(c.line, x)));
                }
            }
            "RegexExtractor" => {
                let name = b.prop_text(c, "RegexExtractor.refname").unwrap_or_default();
                let regex = b.prop_text(c, "RegexExtractor.regex").unwrap_or_default();
                let mut x = vec![("regexp", b.str(c.line, &regex))];
                if let Some(t) = b.prop_text(c, "RegexExtractor.template") {
                    x.push(("template", b.str(c.line, &t)));
                }
                if let Some(d) = b.prop_text(c, "RegexExtractor.default") {
                    x.push(("default", b.str(c.line, &d)));
                }
                regexps.push((name, b.map(c.line, x)));
            }
            "ConstantTimer" | "UniformRandomTimer" => {
                b.note(
                    c.line,
                    format!(
                        "the timer `{}` waits after its request here (JMeter waits before it)",
                        c.testname
                    ),
                );
                entries.push(("think-time", timer(b, c)));
            }
            _ => b.unsupported(c, " under a sampler"),
        }
    }
    if !asserts.is_empty() {
        entries.push(("assert", b.seq(e.line, asserts)));
    }
    if !jsonpath.is_empty() {
        let map = jsonpath
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        entries.push(("extract-jsonpath", b.map(e.line, map)));
    }
    if !regexps.is_empty() {
        let map = regexps
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        entries.push(("extract-regexp", b.map(e.line, map)));
    }
    b.map(e.line, entries)
}

/// A Response Assertion: its test strings against the body, headers or code.
fn assertion(b: &mut Builder<'_>, c: &Element) -> Node {
    let field = c
        .prop("Assertion.test_field")
        .unwrap_or("Assertion.response_data");
    let subject = match field {
        "Assertion.response_headers" => "headers",
        "Assertion.response_code" => "http-code",
        _ => "body",
    };
    // test_type bits: 1 matches, 2 contains, 4 not, 8 equals, 16 substring.
    let kind: u32 = c
        .prop("Assertion.test_type")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(2);
    let mut patterns = Vec::new();
    if let Some(list) = c
        .nested("Asserion.test_strings")
        .or_else(|| c.nested("Assertion.test_strings"))
    {
        for p in &list.nested {
            let text = b.text(p.line, &p.value);
            patterns.push(b.str(p.line, &text));
        }
    }
    let regexp = kind & (1 | 2) != 0;
    b.map(
        c.line,
        vec![
            ("contains", b.seq(c.line, patterns)),
            ("subject", b.str(c.line, subject)),
            ("regexp", Node::new(Kind::Bool(regexp), b.span(c.line))),
            ("not", Node::new(Kind::Bool(kind & 4 != 0), b.span(c.line))),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn properties_and_functions() {
        let p = props(&[("port", "8080"), ("host", "h")]);
        let r = Resolver { properties: &p };
        assert_eq!(r.resolve("${__P(port,8443)}").unwrap(), "8080");
        assert_eq!(r.resolve("x${__P(threads,10)}y").unwrap(), "x10y");
        assert_eq!(r.resolve("${__property(host,,d)}").unwrap(), "h");
        assert_eq!(r.resolve("${__property(nope,,d)}").unwrap(), "d");
        assert_eq!(r.resolve("/m/${model}").unwrap(), "/m/${model}");
        assert_eq!(r.resolve("${__P(a,${__P(port)})}").unwrap(), "8080");
        assert_eq!(r.resolve("${__P(a,x\\,y)}").unwrap(), "x,y");
        assert!(
            r.resolve("${__P(missing)}")
                .unwrap_err()
                .contains("modules.jmeter.properties")
        );
        assert!(
            r.resolve("${__Random(1,9)}")
                .unwrap_err()
                .contains("`__Random`")
        );
    }
}
