//! Neutral attribute values and key/value pairs, free of any telemetry SDK type.

use std::borrow::Cow;

use crate::model::{Connection, ProcessInfo};
use crate::resource::process_attributes;
use crate::spans::connection_attributes;

/// An attribute value: the subset of OpenTelemetry `AnyValue` this crate produces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A signed 64-bit integer (unsigned counts saturate at `i64::MAX`).
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A homogeneous array of strings (e.g. all values of one header).
    StrArray(Vec<String>),
}

impl AttrValue {
    /// The string, when this is [`AttrValue::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when this is [`AttrValue::Int`].
    pub fn as_int(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The boolean, when this is [`AttrValue::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The strings, when this is [`AttrValue::StrArray`].
    pub fn as_str_array(&self) -> Option<&[String]> {
        match self {
            AttrValue::StrArray(v) => Some(v),
            _ => None,
        }
    }
}

/// One attribute: a key (usually a `'static` constant from [`crate::attributes`]) and a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// Attribute key.
    pub key: Cow<'static, str>,
    /// Attribute value.
    pub value: AttrValue,
}

impl Attribute {
    /// A string attribute.
    pub fn str(key: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        Attribute {
            key: key.into(),
            value: AttrValue::Str(value.into()),
        }
    }

    /// An integer attribute.
    pub fn int(key: impl Into<Cow<'static, str>>, value: i64) -> Self {
        Attribute {
            key: key.into(),
            value: AttrValue::Int(value),
        }
    }

    /// An integer attribute from an unsigned count, saturating at `i64::MAX`.
    pub fn uint(key: impl Into<Cow<'static, str>>, value: u64) -> Self {
        Attribute::int(key, i64::try_from(value).unwrap_or(i64::MAX))
    }

    /// A boolean attribute.
    pub fn bool(key: impl Into<Cow<'static, str>>, value: bool) -> Self {
        Attribute {
            key: key.into(),
            value: AttrValue::Bool(value),
        }
    }

    /// A string-array attribute.
    pub fn str_array(key: impl Into<Cow<'static, str>>, values: Vec<String>) -> Self {
        Attribute {
            key: key.into(),
            value: AttrValue::StrArray(values),
        }
    }
}

/// Where a mapping puts its attributes, one call per attribute, in order:
/// a list ([`Vec<Attribute>`], which copies every value) or an encoder that
/// writes each one as it comes and keeps no copy (the OTLP span encoder).
/// Values are borrowed for the call only.
pub trait AttributeSink {
    /// A string attribute.
    fn str(&mut self, key: &'static str, value: &str);
    /// An integer attribute.
    fn int(&mut self, key: &'static str, value: i64);
    /// A boolean attribute.
    fn bool(&mut self, key: &'static str, value: bool);
    /// A string-array attribute; its key may be built (`http.request.header.<name>`).
    fn str_array<S: AsRef<str>>(&mut self, key: &str, values: &[S]);

    /// A string attribute whose value is `parts` joined; an encoder writes
    /// them one after the other, without joining them first.
    fn str_of(&mut self, key: &'static str, parts: &[&str]) {
        self.str(key, &parts.concat());
    }

    /// An integer attribute from an unsigned count, saturating at `i64::MAX`.
    fn uint(&mut self, key: &'static str, value: u64) {
        self.int(key, i64::try_from(value).unwrap_or(i64::MAX));
    }

    /// The observed process's attributes
    /// ([`crate::resource::process_attributes`]); an encoder may write
    /// the ones it encoded for that process before instead.
    fn process(&mut self, p: &ProcessInfo)
    where
        Self: Sized,
    {
        process_attributes(p, self);
    }

    /// The attributes every span of `connection` carries
    /// ([`crate::spans::connection_attributes`]); an encoder may write the
    /// ones it encoded for that connection before instead.
    fn connection(&mut self, connection: &Connection)
    where
        Self: Sized,
    {
        connection_attributes(connection, self);
    }
}

impl AttributeSink for Vec<Attribute> {
    fn str(&mut self, key: &'static str, value: &str) {
        self.push(Attribute::str(key, value));
    }

    fn int(&mut self, key: &'static str, value: i64) {
        self.push(Attribute::int(key, value));
    }

    fn bool(&mut self, key: &'static str, value: bool) {
        self.push(Attribute::bool(key, value));
    }

    fn str_array<S: AsRef<str>>(&mut self, key: &str, values: &[S]) {
        self.push(Attribute::str_array(
            key.to_string(),
            values.iter().map(|v| v.as_ref().to_string()).collect(),
        ));
    }
}

/// The value of the first attribute named `key`, if any.
pub fn find<'a>(attributes: &'a [Attribute], key: &str) -> Option<&'a AttrValue> {
    attributes.iter().find(|a| a.key == key).map(|a| &a.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_find() {
        let attrs = vec![
            Attribute::str("a", "x"),
            Attribute::int("b", -3),
            Attribute::uint("c", u64::MAX),
            Attribute::bool("d", true),
            Attribute::str_array(String::from("e"), vec!["1".into(), "2".into()]),
            Attribute::str("a", "second"),
        ];
        assert_eq!(find(&attrs, "a").and_then(AttrValue::as_str), Some("x"));
        assert_eq!(find(&attrs, "b").and_then(AttrValue::as_int), Some(-3));
        assert_eq!(
            find(&attrs, "c").and_then(AttrValue::as_int),
            Some(i64::MAX)
        );
        assert_eq!(find(&attrs, "d").and_then(AttrValue::as_bool), Some(true));
        assert_eq!(
            find(&attrs, "e").and_then(AttrValue::as_str_array),
            Some(&["1".to_string(), "2".to_string()][..])
        );
        assert_eq!(find(&attrs, "missing"), None);
        assert_eq!(AttrValue::Int(1).as_str(), None);
        assert_eq!(AttrValue::Str("1".into()).as_int(), None);
    }
}
