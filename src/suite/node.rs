//! The located YAML tree every layer is parsed into.
//!
//! [`Node`] keeps the file, line and column of every value and key through merging,
//! interpolation and overrides, so that a diagnostic about the effective suite can still
//! point at the line a person wrote. Parsing is serde-saphyr's; this module only converts
//! its spanned values into our tree. It must not know about suite semantics.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Index of a source in a [`super::source::SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// Where a value came from: 1-based line and column, length in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

/// A YAML value with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Mappings keep their written order; keys are unique after merging.
    Map(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    pub fn new(kind: Kind, span: Span) -> Self {
        Self { kind, span }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The entry for `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.kind {
            Kind::Map(entries) => entries
                .iter_mut()
                .find(|e| e.key == key)
                .map(|e| &mut e.value),
            _ => None,
        }
    }

    /// A short name of the YAML type, for messages ("a string", "a list").
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }

    /// Scalars as the text a person would write; `None` for collections and null.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Str(s) => Some(s.clone()),
            Kind::Null | Kind::Seq(_) | Kind::Map(_) => None,
        }
    }

    /// Converts to JSON, for effective configs and reports.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A YAML parse failure with its location.
#[derive(Debug)]
pub struct ParseError {
    pub message: String,
    pub line: u32,
    pub col: u32,
}

/// Parses every document of a YAML (or JSON) text. Empty documents are skipped.
pub fn parse_documents(text: &str, file: FileId) -> Result<Vec<Node>, ParseError> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        // YAML 1.2 core booleans: `y`, `n`, `on` stay strings (keys such as `y` matter);
        // boolean fields still accept `yes`/`no`, see `de`.
        strict_booleans: true,
    };
    let docs: Vec<Option<Spanned<YamlValue>>> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            let (line, col) = e
                .location()
                .map_or((1, 1), |l| (l.line() as u32, l.column() as u32));
            ParseError {
                message: first_line(&e.to_string()),
                line: line.max(1),
                col: col.max(1),
            }
        })?;
    Ok(docs
        .into_iter()
        .flatten()
        .map(|doc| doc.into_node(file))
        .filter(|n| n.kind != Kind::Null)
        .collect())
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_owned()
}

/// serde-saphyr's view of a value: children carry their own spans.
enum YamlValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<YamlValue>>),
    Map(Vec<(Spanned<YamlKey>, Spanned<YamlValue>)>),
}

struct YamlKey(String);

trait IntoNode {
    fn into_node(self, file: FileId) -> Node;
}

fn span_of<T>(spanned: &Spanned<T>, file: FileId, fallback_len: usize) -> Span {
    let loc = &spanned.referenced;
    let len = match loc.span().len() {
        0 => fallback_len,
        n => n as usize,
    };
    Span {
        file,
        line: loc.line() as u32,
        col: loc.column() as u32,
        len: len.max(1) as u32,
    }
}

impl IntoNode for Spanned<YamlValue> {
    fn into_node(self, file: FileId) -> Node {
        let fallback = match &self.value {
            YamlValue::Str(s) => s.chars().count(),
            _ => 1,
        };
        let span = span_of(&self, file, fallback);
        let kind = match self.value {
            YamlValue::Null => Kind::Null,
            YamlValue::Bool(b) => Kind::Bool(b),
            YamlValue::Int(i) => Kind::Int(i),
            YamlValue::Float(f) => Kind::Float(f),
            YamlValue::Str(s) => Kind::Str(s),
            YamlValue::Seq(items) => {
                Kind::Seq(items.into_iter().map(|i| i.into_node(file)).collect())
            }
            YamlValue::Map(entries) => Kind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let key_span = span_of(&k, file, k.value.0.chars().count());
                        Entry {
                            key: k.value.0,
                            key_span,
                            value: v.into_node(file),
                        }
                    })
                    .collect(),
            ),
        };
        Node { kind, span }
    }
}

impl<'de> Deserialize<'de> for YamlValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = YamlValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<YamlValue, E> {
        Ok(YamlValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<YamlValue, E> {
        Ok(YamlValue::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<YamlValue, E> {
        Ok(i64::try_from(v).map_or(YamlValue::Float(v as f64), YamlValue::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<YamlValue, E> {
        Ok(YamlValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<YamlValue, E> {
        Ok(YamlValue::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<YamlValue, E> {
        Ok(YamlValue::Str(v))
    }
    fn visit_unit<E>(self) -> Result<YamlValue, E> {
        Ok(YamlValue::Null)
    }
    fn visit_none<E>(self) -> Result<YamlValue, E> {
        Ok(YamlValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YamlValue, D::Error> {
        YamlValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(YamlValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(YamlValue::Map(entries))
    }
}

impl<'de> Deserialize<'de> for YamlKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'k> Visitor<'k> for KeyVisitor {
            type Value = YamlKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<YamlKey, E> {
                Ok(YamlKey(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<YamlKey, E> {
                Ok(YamlKey(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<YamlKey, E> {
                Ok(YamlKey(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<YamlKey, E> {
                Ok(YamlKey(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<YamlKey, E> {
                Ok(YamlKey(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<YamlKey, E> {
                Ok(YamlKey("~".to_owned()))
            }
            fn visit_map<A: MapAccess<'k>>(self, _: A) -> Result<YamlKey, A::Error> {
                Err(de::Error::custom("a map cannot be used as a key"))
            }
            fn visit_seq<A: SeqAccess<'k>>(self, _: A) -> Result<YamlKey, A::Error> {
                Err(de::Error::custom("a list cannot be used as a key"))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_and_columns() {
        let docs = parse_documents("a:\n  b: [1, x]\n---\nc: 2.5\n", FileId(0)).unwrap();
        assert_eq!(docs.len(), 2);
        let b = docs[0].get("a").unwrap().get("b").unwrap();
        assert_eq!((b.span.line, b.span.col), (2, 6));
        let x = &b.as_seq().unwrap()[1];
        assert_eq!(x.as_str(), Some("x"));
        assert_eq!((x.span.line, x.span.col), (2, 10));
        let entry = &docs[0].get("a").unwrap().as_map().unwrap()[0];
        assert_eq!(
            (entry.key_span.line, entry.key_span.col, entry.key_span.len),
            (2, 3, 1)
        );
        assert_eq!(docs[1].get("c").unwrap().kind, Kind::Float(2.5));
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let err = parse_documents("a: [1, 2\nb: 3\n", FileId(0)).unwrap_err();
        assert!(err.line >= 1, "{err:?}");
    }
}
