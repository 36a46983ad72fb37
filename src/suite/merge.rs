//! Taurus layer merging and `-o` overrides on located trees.
//!
//! [`merge`] folds one layer into the accumulated config: maps merge recursively, lists
//! concatenate, scalars replace; a key written `~key` replaces, `^key` deletes and `$key`
//! merges lists element by element. [`apply_override`] implements `-o a.b.0.c=VALUE`. Both keep
//! the spans of whichever layer wrote a value last. Nothing here knows what keys mean.

use super::node::{Entry, Kind, Node, Span};

/// How a key asks to be merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Merge,
    Replace,
    Delete,
    ElementWise,
}

fn split_key(key: &str) -> (Mode, &str) {
    match key.chars().next() {
        Some('~') => (Mode::Replace, &key[1..]),
        Some('^') => (Mode::Delete, &key[1..]),
        Some('$') => (Mode::ElementWise, &key[1..]),
        _ => (Mode::Merge, key),
    }
}

/// Folds `overlay` into `base` with the Taurus rules.
pub fn merge(base: &mut Node, overlay: Node) {
    match (&mut base.kind, overlay.kind) {
        (Kind::Map(entries), Kind::Map(incoming)) => {
            for entry in incoming {
                merge_entry(entries, entry);
            }
        }
        (Kind::Seq(items), Kind::Seq(incoming)) => {
            items.extend(incoming.into_iter().map(normalize));
        }
        (_, kind) => *base = normalize(Node::new(kind, overlay.span)),
    }
}

fn merge_entry(entries: &mut Vec<Entry>, entry: Entry) {
    let (mode, key) = split_key(&entry.key);
    let key = key.to_owned();
    let position = entries.iter().position(|e| e.key == key);
    let mut key_span = entry.key_span;
    if mode != Mode::Merge {
        // Point at the key itself, not at its prefix.
        key_span.col += 1;
        key_span.len = key_span.len.saturating_sub(1).max(1);
    }
    match (mode, position) {
        (Mode::Delete, Some(i)) => {
            entries.remove(i);
        }
        (Mode::Delete, None) => {}
        (Mode::Merge, Some(i)) => merge(&mut entries[i].value, entry.value),
        (Mode::ElementWise, Some(i)) => merge_elementwise(&mut entries[i].value, entry.value),
        (Mode::Replace, Some(i)) => {
            entries[i] = Entry {
                key,
                key_span,
                value: normalize(entry.value),
            };
        }
        (_, None) => entries.push(Entry {
            key,
            key_span,
            value: normalize(entry.value),
        }),
    }
}

fn merge_elementwise(base: &mut Node, overlay: Node) {
    match (&mut base.kind, overlay.kind) {
        (Kind::Seq(items), Kind::Seq(incoming)) => {
            for (i, item) in incoming.into_iter().enumerate() {
                match items.get_mut(i) {
                    Some(existing) => merge(existing, item),
                    None => items.push(normalize(item)),
                }
            }
        }
        (_, kind) => merge(base, Node::new(kind, overlay.span)),
    }
}

/// Removes merge prefixes from a value that has nothing to merge into.
fn normalize(node: Node) -> Node {
    let mut empty = Node::new(
        match node.kind {
            Kind::Map(_) => Kind::Map(Vec::new()),
            Kind::Seq(_) => Kind::Seq(Vec::new()),
            _ => return node,
        },
        node.span,
    );
    merge(&mut empty, node);
    empty
}

/// Merges a whole layer into the accumulated config, starting from an empty map.
pub fn merge_layers(layers: impl IntoIterator<Item = Node>, root_span: Span) -> Node {
    let mut root = Node::new(Kind::Map(Vec::new()), root_span);
    for layer in layers {
        merge(&mut root, layer);
    }
    root
}

/// Why an `-o` override could not be applied.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("expected KEY=VALUE, found `{0}`")]
    MissingEquals(String),
    #[error("`{path}` is {found}, so `{part}` cannot index into it")]
    NotAContainer {
        path: String,
        part: String,
        found: &'static str,
    },
    #[error("`{path}` has {len} items, so index {index} is out of range")]
    OutOfRange {
        path: String,
        index: i64,
        len: usize,
    },
}

/// Splits `a.b.0.c=VALUE` into its path and value text.
pub fn split_override(text: &str) -> Result<(&str, &str), OverrideError> {
    text.split_once('=')
        .filter(|(path, _)| !path.trim().is_empty())
        .map(|(path, value)| (path.trim(), value))
        .ok_or_else(|| OverrideError::MissingEquals(text.to_owned()))
}

/// Sets `path` (dot-separated; integers index lists, `-1` appends, `^key` deletes) to `value`.
pub fn apply_override(root: &mut Node, path: &str, value: Node) -> Result<(), OverrideError> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut current = root;
    let mut walked = String::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let span = current.span;
        let here = walked.clone();
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
        if current.kind == Kind::Null {
            // An empty key such as `settings:` gains the structure the path asks for.
            current.kind = if part.parse::<i64>().is_ok() {
                Kind::Seq(Vec::new())
            } else {
                Kind::Map(Vec::new())
            };
        }
        match &mut current.kind {
            Kind::Seq(items) => {
                let index: i64 = part.parse().map_err(|_| OverrideError::NotAContainer {
                    path: here.clone(),
                    part: (*part).to_owned(),
                    found: "a list",
                })?;
                let len = items.len();
                // `-1`, or the index one past the end, appends.
                let slot = if index == -1 || usize::try_from(index) == Ok(len) {
                    let filler = if last {
                        Kind::Null
                    } else {
                        Kind::Map(Vec::new())
                    };
                    items.push(Node::new(filler, span));
                    len
                } else {
                    usize::try_from(index).ok().filter(|&i| i < len).ok_or(
                        OverrideError::OutOfRange {
                            path: here,
                            index,
                            len,
                        },
                    )?
                };
                if last {
                    items[slot] = value;
                    return Ok(());
                }
                current = &mut items[slot];
            }
            Kind::Map(entries) => {
                if last {
                    if let Some(deleted) = part.strip_prefix('^') {
                        entries.retain(|e| e.key != deleted);
                    } else if let Some(entry) = entries.iter_mut().find(|e| e.key == *part) {
                        entry.value = value;
                    } else {
                        entries.push(Entry {
                            key: (*part).to_owned(),
                            key_span: value.span,
                            value,
                        });
                    }
                    return Ok(());
                }
                let index = match entries.iter().position(|e| e.key == *part) {
                    Some(index) => index,
                    None => {
                        let next_is_index = parts[i + 1].parse::<i64>().is_ok();
                        let kind = if next_is_index {
                            Kind::Seq(Vec::new())
                        } else {
                            Kind::Map(Vec::new())
                        };
                        entries.push(Entry {
                            key: (*part).to_owned(),
                            key_span: value.span,
                            value: Node::new(kind, value.span),
                        });
                        entries.len() - 1
                    }
                };
                current = &mut entries[index].value;
            }
            other => {
                let found = Node::new(other.clone(), span).type_name();
                return Err(OverrideError::NotAContainer {
                    path: here,
                    part: (*part).to_owned(),
                    found,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::node::{FileId, parse_documents};

    fn yaml(text: &str) -> Node {
        parse_documents(text, FileId(0)).unwrap().remove(0)
    }

    fn merged(layers: &[&str]) -> serde_json::Value {
        let span = Span {
            file: FileId(0),
            line: 1,
            col: 1,
            len: 1,
        };
        merge_layers(layers.iter().map(|l| yaml(l)), span).to_json()
    }

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    /// DESIGN §4.1, case by case: (layers in order, expected result).
    #[test]
    fn merge_rules() {
        let cases: &[(&[&str], &str)] = &[
            // maps merge recursively
            (&["a: {x: 1}", "a: {y: 2}"], r#"{"a": {"x": 1, "y": 2}}"#),
            // scalars replace
            (&["a: 1", "a: 2"], r#"{"a": 2}"#),
            (&["a: {x: 1}", "a: 3"], r#"{"a": 3}"#),
            // lists concatenate
            (&["l: [1, 2]", "l: [3]"], r#"{"l": [1, 2, 3]}"#),
            // ~key replaces instead of merging
            (&["a: {x: 1}", "~a: {y: 2}"], r#"{"a": {"y": 2}}"#),
            (&["l: [1, 2]", "~l: [3]"], r#"{"l": [3]}"#),
            // ^key deletes
            (&["a: 1\nb: 2", "^a: null"], r#"{"b": 2}"#),
            (&["b: 2", "^missing: 1"], r#"{"b": 2}"#),
            // $key merges lists element by element
            (
                &["l: [{a: 1}, {b: 2}]", "$l: [{c: 3}]"],
                r#"{"l": [{"a": 1, "c": 3}, {"b": 2}]}"#,
            ),
            (&["l: [1]", "$l: [5, 6]"], r#"{"l": [5, 6]}"#),
            // prefixes with nothing to merge into are stripped
            (
                &["~a: {^b: 1, c: [{~d: 2}]}"],
                r#"{"a": {"c": [{"d": 2}]}}"#,
            ),
            // order of keys is the order first written
            (&["b: 1\na: 1", "c: 1\nb: 2"], r#"{"b": 2, "a": 1, "c": 1}"#),
        ];
        for (layers, expected) in cases {
            assert_eq!(merged(layers), json(expected), "layers: {layers:?}");
        }
    }

    fn overridden(base: &str, path: &str, value: &str) -> Result<serde_json::Value, OverrideError> {
        let mut root = yaml(base);
        apply_override(
            &mut root,
            path,
            yaml(&format!("v: {value}")).get("v").unwrap().clone(),
        )?;
        Ok(root.to_json())
    }

    /// `-o` overrides, case by case.
    #[test]
    fn override_rules() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("a: 1", "a", "2", r#"{"a": 2}"#),
            ("a: 1", "b.c", "x", r#"{"a": 1, "b": {"c": "x"}}"#),
            (
                "e: [{c: 1}, {c: 2}]",
                "e.1.c",
                "5",
                r#"{"e": [{"c": 1}, {"c": 5}]}"#,
            ),
            ("e: [1]", "e.-1", "2", r#"{"e": [1, 2]}"#),
            (
                "e: [{c: 1}]",
                "e.-1.c",
                "3",
                r#"{"e": [{"c": 1}, {"c": 3}]}"#,
            ),
            ("a: {b: 1, c: 2}", "a.^b", "null", r#"{"a": {"c": 2}}"#),
            ("a: 1", "b", "[1, 2]", r#"{"a": 1, "b": [1, 2]}"#),
            ("a: 1", "b", "'007'", r#"{"a": 1, "b": "007"}"#),
            ("a: 1", "n.0", "x", r#"{"a": 1, "n": ["x"]}"#),
        ];
        for (base, path, value, expected) in cases {
            let got = overridden(base, path, value).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(got, json(expected), "-o {path}={value} on {base}");
        }
    }

    #[test]
    fn override_errors() {
        assert_eq!(
            overridden("e: [1]", "e.3", "2").unwrap_err(),
            OverrideError::OutOfRange {
                path: "e".into(),
                index: 3,
                len: 1
            }
        );
        assert!(matches!(
            overridden("a: 1", "a.b", "2").unwrap_err(),
            OverrideError::NotAContainer { .. }
        ));
        assert!(split_override("novalue").is_err());
        assert_eq!(split_override("a.b=c=d").unwrap(), ("a.b", "c=d"));
    }
}
