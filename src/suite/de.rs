//! Deserializes located trees into the raw types, collecting every problem.
//!
//! [`from_node`] drives serde over a [`Node`]: unknown keys are reported with a did-you-mean
//! from the struct's own field list (or as warnings for Taurus-only keys), type errors are
//! located at the innermost value, and [`Located<T>`] fields are recovery points: a value that
//! fails becomes `None` after its error is recorded, so one typo does not hide the next one.
//! This module must not know any suite semantics beyond the ignorable-key table it is given.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Error as _, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde::{Deserialize, Deserializer};

use super::diagnostics::{Diagnostic, did_you_mean};
use super::node::{Entry, FileId, Kind, Node, Span};

const LOCATED: &str = "$perfgate::Located";

/// A value with the span it came from. `value` is `None` when it could not be read; the
/// reason has already been reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    pub span: Span,
    pub value: Option<T>,
}

impl<T> Located<T> {
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LocatedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
            type Value = Located<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a located value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located<T>, A::Error> {
                map.next_key::<String>()?;
                let (file, line, col, len) = map.next_value::<(u32, u32, u32, u32)>()?;
                map.next_key::<String>()?;
                // Our deserializer has already reported why the value failed.
                let value = map.next_value::<T>().ok();
                Ok(Located {
                    span: Span {
                        file: FileId(file),
                        line,
                        col,
                        len,
                    },
                    value,
                })
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Located<T>, D::Error> {
                let span = Span {
                    file: FileId(u32::MAX),
                    line: 0,
                    col: 0,
                    len: 0,
                };
                T::deserialize(d).map(|v| Located {
                    span,
                    value: Some(v),
                })
            }
        }
        deserializer.deserialize_newtype_struct(LOCATED, LocatedVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A deserialization failure. `span` is filled by the innermost node that saw it.
#[derive(Debug)]
pub struct DeError {
    message: String,
    span: Option<Span>,
    label: Option<String>,
    /// Already recorded by a [`Located`] below; only propagates.
    reported: bool,
}

impl DeError {
    fn at(mut self, span: Span) -> Self {
        self.span.get_or_insert(span);
        self
    }

    fn reported() -> Self {
        Self {
            message: String::new(),
            span: None,
            label: None,
            reported: true,
        }
    }

    fn into_diagnostic(self, fallback: Span) -> Diagnostic {
        // Value parsers put their fix after "\nhint: ".
        let (message, hint) = match self.message.split_once("\nhint: ") {
            Some((m, h)) => (m.to_owned(), Some(h.to_owned())),
            None => (self.message, None),
        };
        let mut d = Diagnostic::error(self.span.unwrap_or(fallback), message);
        d.label = self.label;
        d.hint = hint;
        d
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            span: None,
            label: None,
            reported: false,
        }
    }

    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, found {}",
            friendly(expected),
            describe(&unexpected)
        ))
    }

    fn invalid_value(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::invalid_type(unexpected, expected)
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing required key `{field}`"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format_args!(
            "unknown value `{variant}`; expected one of {}",
            expected
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        e.label =
            did_you_mean(variant, expected.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        e
    }
}

/// serde names primitive types the Rust way; users read YAML.
fn friendly(expected: &dyn de::Expected) -> String {
    let text = expected.to_string();
    match text.as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        _ => text,
    }
}

fn describe(unexpected: &de::Unexpected<'_>) -> String {
    match unexpected {
        de::Unexpected::Str(s) => format!("the string `{s}`"),
        de::Unexpected::Signed(i) => format!("the integer `{i}`"),
        de::Unexpected::Unsigned(i) => format!("the integer `{i}`"),
        de::Unexpected::Float(x) => format!("the number `{x}`"),
        de::Unexpected::Bool(b) => format!("the boolean `{b}`"),
        de::Unexpected::Seq => "a list".to_owned(),
        de::Unexpected::Map => "a map".to_owned(),
        de::Unexpected::Unit => "null".to_owned(),
        other => other.to_string(),
    }
}

/// Keys that Taurus or JMeter accept but that cannot change results here: `(struct, key)`
/// → why it is ignored. They produce a warning instead of an unknown-key error.
pub type IgnorableKeys = fn(&str, &str) -> Option<&'static str>;

/// Where diagnostics collect while deserializing.
pub struct DeContext {
    diagnostics: RefCell<Vec<Diagnostic>>,
    ignorable: IgnorableKeys,
}

impl fmt::Debug for DeContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeContext").finish_non_exhaustive()
    }
}

impl DeContext {
    pub fn new(ignorable: IgnorableKeys) -> Self {
        Self {
            diagnostics: RefCell::default(),
            ignorable,
        }
    }

    fn report(&self, d: Diagnostic) {
        self.diagnostics.borrow_mut().push(d);
    }

    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics.into_inner()
    }
}

/// Deserializes `node` as `T`, recording every problem in `ctx`. `None` when the value as a
/// whole could not be read.
pub fn from_node<T: DeserializeOwned>(node: &Node, ctx: &DeContext) -> Option<T> {
    match T::deserialize(NodeDe { node, ctx }) {
        Ok(value) => Some(value),
        Err(e) => {
            if !e.reported {
                ctx.report(e.into_diagnostic(node.span));
            }
            None
        }
    }
}

/// The field names serde derives for a struct, for types that accept a string or a map.
pub fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe;
    #[derive(Debug)]
    struct Found(&'static [&'static str]);
    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("fields")
        }
    }
    impl std::error::Error for Found {}
    impl de::Error for Found {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Found(&[])
        }
    }
    impl<'de> Deserializer<'de> for Probe {
        type Error = Found;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    match T::deserialize(Probe) {
        Err(Found(fields)) => fields,
        Ok(_) => &[],
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    ctx: &'a DeContext,
}

impl NodeDe<'_> {
    fn invalid(&self, expected: &str) -> DeError {
        DeError::custom(format_args!(
            "expected {expected}, found {}",
            self.node.type_name()
        ))
        .at(self.node.span)
    }
}

macro_rules! numeric {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let span = self.node.span;
            match &self.node.kind {
                // Numbers written as strings (for example after `${VAR}` substitution).
                Kind::Str(s) if s.trim().parse::<i64>().is_ok() => {
                    visitor.visit_i64(s.trim().parse().unwrap_or_default())
                }
                Kind::Str(s) if s.trim().parse::<f64>().is_ok() => {
                    visitor.visit_f64(s.trim().parse().unwrap_or_default())
                }
                _ => return self.deserialize_any(visitor),
            }
            .map_err(|e: DeError| e.at(span))
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match &self.node.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Bool(b) => visitor.visit_bool(*b),
            Kind::Int(i) => visitor.visit_i64(*i),
            Kind::Float(x) => visitor.visit_f64(*x),
            Kind::Str(s) => visitor.visit_str(s),
            Kind::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter(),
                ctx: self.ctx,
            }),
            Kind::Map(entries) => visitor.visit_map(MapDe::new(entries, None, "", self.ctx)),
        }
        .map_err(|e: DeError| e.at(span))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Taurus (YAML 1.1) writes booleans as yes/no/on/off too.
        let word = self.node.as_str().map(str::to_ascii_lowercase);
        match word.as_deref() {
            Some("true" | "yes" | "on") => visitor.visit_bool(true),
            Some("false" | "no" | "off") => visitor.visit_bool(false),
            _ => self.deserialize_any(visitor),
        }
    }

    numeric! { deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8
    deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32 deserialize_f64 }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // `label: 200` or `version: 1.0` are strings to whoever wrote them.
        match self.node.scalar_text() {
            Some(text) => visitor
                .visit_string(text)
                .map_err(|e: DeError| e.at(self.node.span)),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            Kind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == LOCATED {
            return visitor.visit_map(LocatedAccess {
                node: self.node,
                ctx: self.ctx,
                step: 0,
            });
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Seq(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Map(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid("a map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match &self.node.kind {
            Kind::Map(entries) => {
                visitor.visit_map(MapDe::new(entries, Some(fields), name, self.ctx))
            }
            // Types that also accept a short string form see it through `visit_str`.
            Kind::Str(s) => visitor.visit_str(s),
            _ => visitor
                .visit_map(MapDe::new(&[], Some(fields), name, self.ctx))
                .and_then(|_| Err(self.invalid("a map"))),
        }
        .map_err(|e: DeError| e.at(span))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.node.scalar_text() {
            Some(text) => {
                let access: StrDeserializer<'_, DeError> = text.as_str().into_deserializer();
                visitor
                    .visit_enum(access)
                    .map_err(|e: DeError| e.at(self.node.span))
            }
            None => Err(self.invalid("a string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct tuple_struct
    }
}

struct SeqDe<'a> {
    items: std::slice::Iter<'a, Node>,
    ctx: &'a DeContext,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed
                .deserialize(NodeDe {
                    node,
                    ctx: self.ctx,
                })
                .map(Some)
                .map_err(|e| e.at(node.span)),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, Entry>,
    fields: Option<&'static [&'static str]>,
    struct_name: &'static str,
    value: Option<&'a Node>,
    ctx: &'a DeContext,
}

impl<'a> MapDe<'a> {
    fn new(
        entries: &'a [Entry],
        fields: Option<&'static [&'static str]>,
        struct_name: &'static str,
        ctx: &'a DeContext,
    ) -> Self {
        Self {
            entries: entries.iter(),
            fields,
            struct_name,
            value: None,
            ctx,
        }
    }

    /// Reports `entry` if the struct has no such field; true when it should be skipped.
    fn skip_unknown(&self, entry: &'a Entry) -> bool {
        let Some(fields) = self.fields else {
            return false;
        };
        if fields.contains(&entry.key.as_str()) {
            return false;
        }
        let where_ = context_name(self.struct_name);
        let diagnostic = match (self.ctx.ignorable)(self.struct_name, &entry.key) {
            Some(why) => {
                Diagnostic::warning(entry.key_span, format!("`{}` is ignored: {why}", entry.key))
            }
            None => Diagnostic::error(
                entry.key_span,
                format!("unknown key `{}` in {where_}", entry.key),
            )
            .with_suggestion(&entry.key, fields.iter().copied())
            .with_hint(format!(
                "{where_} accepts: {}",
                fields
                    .iter()
                    .filter(|f| !f.starts_with('$'))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        self.ctx.report(diagnostic);
        true
    }
}

/// "RawExecution" → "an execution"; the names the user sees for our structs.
fn context_name(struct_name: &str) -> String {
    match struct_name {
        "RawSuite" => return "the top level of a suite".to_owned(),
        "RawSettings" => return "`settings`".to_owned(),
        "RawCriterion" | "RawCriterionLong" => return "a criterion".to_owned(),
        "RawReady" => return "`ready`".to_owned(),
        "RawStop" => return "`stop`".to_owned(),
        _ => {}
    }
    let base = struct_name.strip_prefix("Raw").unwrap_or(struct_name);
    let mut words = String::new();
    for (i, c) in base.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    let article = if words.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {words}")
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while let Some(entry) = self.entries.next() {
            if self.skip_unknown(entry) {
                continue;
            }
            self.value = Some(&entry.value);
            let key = Node::new(Kind::Str(entry.key.clone()), entry.key_span);
            return seed
                .deserialize(NodeDe {
                    node: &key,
                    ctx: self.ctx,
                })
                .map(Some)
                .map_err(|e| e.at(entry.key_span));
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| DeError::custom("value without a key"))?;
        seed.deserialize(NodeDe {
            node,
            ctx: self.ctx,
        })
        .map_err(|e| e.at(node.span))
    }
}

/// The two entries (`span`, `value`) that [`Located`] reads.
struct LocatedAccess<'a> {
    node: &'a Node,
    ctx: &'a DeContext,
    step: u8,
}

impl<'de> MapAccess<'de> for LocatedAccess<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let key = match self.step {
            0 => "span",
            1 => "value",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        self.step += 1;
        let span = self.node.span;
        if self.step == 1 {
            let parts = vec![span.file.0, span.line, span.col, span.len];
            return seed.deserialize(de::value::SeqDeserializer::<_, DeError>::new(
                parts.into_iter(),
            ));
        }
        seed.deserialize(NodeDe {
            node: self.node,
            ctx: self.ctx,
        })
        .map_err(|e| {
            if !e.reported {
                self.ctx.report(e.into_diagnostic(span));
            }
            DeError::reported()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::node::parse_documents;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    #[expect(dead_code, reason = "fields are read through Debug in assertions")]
    struct Exec {
        concurrency: Option<Located<u32>>,
        hold_for: Option<Located<String>>,
        keepalive: Option<bool>,
        items: Option<Vec<Located<Item>>>,
    }

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "fields are read through Debug in assertions")]
    struct Item {
        url: String,
        n: Option<u32>,
    }

    fn ignorable(_: &str, key: &str) -> Option<&'static str> {
        (key == "locations").then_some("cloud locations do not apply")
    }

    fn run(text: &str) -> (Option<Exec>, Vec<String>) {
        let node = parse_documents(text, FileId(0)).unwrap().remove(0);
        let ctx = DeContext::new(ignorable);
        let value = from_node::<Exec>(&node, &ctx);
        let messages = ctx
            .into_diagnostics()
            .into_iter()
            .map(|d| {
                let s = d.span.unwrap();
                format!(
                    "{}:{} {:?} {}{}",
                    s.line,
                    s.col,
                    d.severity,
                    d.message,
                    d.label.map(|l| format!(" ({l})")).unwrap_or_default()
                )
            })
            .collect();
        (value, messages)
    }

    #[test]
    fn collects_every_problem_with_locations() {
        let (value, messages) = run(indoc::indoc! {"
            concurency: 10
            concurrency: ten
            keepalive: yes
            locations: {eu: 1}
            items:
              - url: /a
              - url: /b
                n: -1
              - {urll: /c}
        "});
        assert!(value.is_some());
        assert_eq!(
            messages,
            [
                "1:1 Error unknown key `concurency` in an exec (did you mean `concurrency`?)",
                "2:14 Error expected a whole number (0 or more), found the string `ten`",
                "4:1 Warning `locations` is ignored: cloud locations do not apply",
                "8:8 Error expected a whole number (0 or more), found the integer `-1`",
                "9:6 Error unknown key `urll` in an item (did you mean `url`?)",
                "9:5 Error missing required key `url`",
            ]
        );
        let value = value.unwrap();
        assert_eq!(value.keepalive, Some(true));
        let items = value.items.unwrap();
        assert!(items[0].value.is_some() && items[1].value.is_none() && items[2].value.is_none());
    }

    #[test]
    fn finds_struct_fields() {
        assert_eq!(struct_fields::<Item>(), ["url", "n"]);
    }
}
