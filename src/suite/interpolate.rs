//! `${NAME}` substitution with Taurus's `settings.env` rules.
//!
//! [`Variables`] holds the names declared in `settings.env` (each value may use OS variables
//! and the entries before it), the built-ins `${ARTIFACTS_DIR}`, `${TAURUS_ARTIFACTS_DIR}`,
//! `${PERFGATE}` and one loopback port per `settings.ports` name. [`interpolate`] replaces them
//! in every string of a tree; what remains are runtime variables, checked by `validate`.

use std::collections::BTreeMap;
use std::ops::Range;

use super::node::{Kind, Node, parse_documents};

/// A `${...}` reference inside a string: byte range of the whole `${...}` and the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub range: Range<usize>,
    pub name: String,
}

/// Every `${name}` in `text`, in order. `$${` is an escaped literal `${`.
pub fn references(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'$' {
            i += 2;
            continue;
        }
        if bytes[i] == b'$'
            && bytes[i + 1] == b'{'
            && let Some(close) = text[i + 2..].find('}')
        {
            let end = i + 2 + close + 1;
            found.push(Reference {
                range: i..end,
                name: text[i + 2..end - 1].to_owned(),
            });
            i = end;
            continue;
        }
        i += 1;
    }
    found
}

/// The text a process receives: the escape `$${` becomes a literal `${`. Applied where text
/// leaves perfgate (commands, server argv, request URLs, headers and bodies), after
/// validation, so an escaped reference is never taken for an undefined variable.
pub fn unescape(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains("$${") {
        std::borrow::Cow::Owned(text.replace("$${", "${"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Values for `${NAME}`, in declaration order.
#[derive(Clone, Debug, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

/// Built-in variables that do not come from `settings.env`.
#[derive(Clone, Debug)]
pub struct Builtins {
    pub artifacts_dir: String,
    pub perfgate: String,
    /// One free loopback port per name in `settings.ports`.
    pub ports: Vec<(String, u16)>,
}

pub const BUILTIN_NAMES: &[&str] = &["ARTIFACTS_DIR", "TAURUS_ARTIFACTS_DIR", "PERFGATE"];

impl Variables {
    /// Resolves `settings.env` of a merged config: each value is interpolated with the OS
    /// environment and the entries declared before it. A `null` value is the empty string
    /// (as Taurus exports it: defined, but empty).
    pub fn from_settings(root: &Node, os_env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut vars = Self::default();
        let Some(env) = root
            .get("settings")
            .and_then(|s| s.get("env"))
            .and_then(Node::as_map)
        else {
            return vars;
        };
        for entry in env {
            match entry.value.scalar_text() {
                Some(raw) => {
                    let value = substitute(&raw, &|name| {
                        vars.values.get(name).cloned().or_else(|| os_env(name))
                    });
                    vars.values.insert(entry.key.clone(), value);
                }
                None => {
                    vars.values.insert(entry.key.clone(), String::new());
                }
            }
        }
        vars
    }

    pub fn add_builtins(&mut self, builtins: &Builtins) {
        self.values
            .insert("ARTIFACTS_DIR".into(), builtins.artifacts_dir.clone());
        self.values.insert(
            "TAURUS_ARTIFACTS_DIR".into(),
            builtins.artifacts_dir.clone(),
        );
        self.values
            .insert("PERFGATE".into(), builtins.perfgate.clone());
        for (name, port) in &builtins.ports {
            self.values.insert(name.clone(), port.to_string());
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Replaces every known `${NAME}` in `text`; unknown references stay as written.
    pub fn apply(&self, text: &str) -> String {
        substitute(text, &|name| self.values.get(name).cloned())
    }
}

fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let refs = references(text);
    if refs.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in refs {
        out.push_str(&text[last..r.range.start]);
        match lookup(&r.name) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&text[r.range.clone()]),
        }
        last = r.range.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Replaces known variables in every string value of `node` (keys are left alone), except
/// under `settings.env`, whose resolved values are written back instead.
///
/// A string that is exactly one `${NAME}` takes the YAML type of its value, so
/// `concurrency: ${USERS}` with `USERS: 10` is the integer 10.
pub fn interpolate(root: &mut Node, vars: &Variables) {
    if let Some(env) = root.get_mut("settings").and_then(|s| s.get_mut("env"))
        && let Kind::Map(entries) = &mut env.kind
    {
        for entry in entries {
            if let Some(value) = vars.get(&entry.key) {
                entry.value.kind = Kind::Str(value.to_owned());
            }
        }
    }
    let Kind::Map(entries) = &mut root.kind else {
        return interpolate_node(root, vars);
    };
    for entry in entries {
        if entry.key == "settings"
            && let Kind::Map(settings) = &mut entry.value.kind
        {
            for s in settings.iter_mut().filter(|s| s.key != "env") {
                interpolate_node(&mut s.value, vars);
            }
            continue;
        }
        interpolate_node(&mut entry.value, vars);
    }
}

fn interpolate_node(node: &mut Node, vars: &Variables) {
    match &mut node.kind {
        Kind::Str(text) => {
            let refs = references(text);
            if refs.is_empty() {
                return;
            }
            let whole = refs.len() == 1 && refs[0].range == (0..text.len());
            let replaced = vars.apply(text);
            if whole && replaced != *text {
                node.kind = typed_scalar(&replaced);
            } else {
                *text = replaced;
            }
        }
        Kind::Seq(items) => items.iter_mut().for_each(|i| interpolate_node(i, vars)),
        Kind::Map(entries) => entries
            .iter_mut()
            .for_each(|e| interpolate_node(&mut e.value, vars)),
        Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => {}
    }
}

/// The YAML scalar a text would be if written in place: `10` → 10, `true` → true.
fn typed_scalar(text: &str) -> Kind {
    let as_scalar = parse_documents(&format!("v: {text}\n"), super::node::FileId(0))
        .ok()
        .and_then(|mut docs| docs.pop())
        .and_then(|doc| doc.get("v").map(|v| v.kind.clone()));
    match as_scalar {
        Some(kind @ (Kind::Int(_) | Kind::Float(_) | Kind::Bool(_))) => kind,
        _ => Kind::Str(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::node::FileId;

    fn yaml(text: &str) -> Node {
        parse_documents(text, FileId(0)).unwrap().remove(0)
    }

    fn os(name: &str) -> Option<String> {
        match name {
            "PATH" => Some("/bin".into()),
            "HOME" => Some("/root".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> serde_json::Value {
        let mut root = yaml(text);
        let mut vars = Variables::from_settings(&root, &os);
        vars.add_builtins(&Builtins {
            artifacts_dir: "/art".into(),
            perfgate: "/bin/perfgate".into(),
            ports: vec![("PORT".into(), 4242)],
        });
        interpolate(&mut root, &vars);
        root.to_json()
    }

    /// DESIGN §4.1 interpolation, case by case: (suite, JSON pointer, expected).
    #[test]
    fn interpolation_rules() {
        let cases: &[(&str, &str, serde_json::Value)] = &[
            // settings.env names are replaced in any string
            (
                "settings: {env: {H: h1}}\nx: http://${H}/a",
                "/x",
                "http://h1/a".into(),
            ),
            // values may use OS variables
            (
                "settings: {env: {P: '${PATH}:/x'}}\nx: ${P}",
                "/x",
                "/bin:/x".into(),
            ),
            // and earlier entries
            (
                "settings: {env: {A: a, B: '${A}b'}}\nx: ${B}",
                "/x",
                "ab".into(),
            ),
            // OS variables alone are not substituted (only declared names are)
            ("x: ${HOME}", "/x", "${HOME}".into()),
            // null is the empty string
            ("settings: {env: {U: null}}\nx: a${U}b", "/x", "ab".into()),
            ("settings: {env: {U: ~}}\nx: ${U}", "/x", "".into()),
            // a whole-value reference takes the YAML type of its value
            ("settings: {env: {N: 10}}\nx: ${N}", "/x", 10.into()),
            ("settings: {env: {N: '10'}}\nx: ${N}", "/x", 10.into()),
            ("settings: {env: {R: 100%}}\nx: ${R}", "/x", "100%".into()),
            ("settings: {env: {N: 10}}\nx: n${N}", "/x", "n10".into()),
            // built-ins
            ("x: ${ARTIFACTS_DIR}/a", "/x", "/art/a".into()),
            ("x: ${TAURUS_ARTIFACTS_DIR}", "/x", "/art".into()),
            (
                "x: ['${PERFGATE}', --port, '${PORT}']",
                "/x/0",
                "/bin/perfgate".into(),
            ),
            ("x: ['${PERFGATE}', --port, '${PORT}']", "/x/2", 4242.into()),
            // runtime variables are left alone
            ("x: /a/${id}", "/x", "/a/${id}".into()),
            // escaped
            ("settings: {env: {A: a}}\nx: $${A}", "/x", "$${A}".into()),
            // keys are not interpolated
            (
                "settings: {env: {A: a}}\nx: {'${A}': 1}",
                "/x/${A}",
                1.into(),
            ),
            // settings.env is written back resolved
            (
                "settings: {env: {A: '${PATH}'}}",
                "/settings/env/A",
                "/bin".into(),
            ),
        ];
        for (text, pointer, expected) in cases {
            let got = run(text);
            assert_eq!(
                got.pointer(pointer),
                Some(expected),
                "{text} at {pointer}: {got}"
            );
        }
    }

    #[test]
    fn finds_references() {
        let refs = references("a${x}b${__P(y)}$${z}${");
        let names: Vec<_> = refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["x", "__P(y)"]);
        assert_eq!(refs[0].range, 1..5);
    }
}
