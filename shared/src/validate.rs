//! Building blocks for whole-body validation: every check appends to one list of field errors,
//! so a client learns about all of its mistakes in one round trip.

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code, FieldError};

/// Collects field errors; `finish` turns a non-empty collection into one 400 problem.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&mut self, field: impl Into<String>, code: Code, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }

    /// Whether a list of `len` items is within `max`; reports `TooMany` when it is not. Check it
    /// before looking at the items and skip them when it says no, so that the work a request
    /// causes stays proportional to the limits, never to what the client sent.
    pub(crate) fn list_within(&mut self, field: &str, len: usize, max: usize) -> bool {
        if len > max {
            self.add(
                field,
                Code::TooMany,
                format!("at most {max} items, got {len}"),
            );
        }
        len <= max
    }

    /// A required field: reports `Required` when absent and hands back the value when present.
    pub(crate) fn required<'a, T>(&mut self, field: &str, value: &'a Option<T>) -> Option<&'a T> {
        if value.is_none() {
            self.add(field, Code::Required, "is required");
        }
        value.as_ref()
    }

    /// Text of `min..=max` characters (Unicode scalar values, so Chinese text fits the same limits
    /// as Latin text). `too_long` is the code reported above `max`.
    pub(crate) fn text(
        &mut self,
        field: &str,
        value: &str,
        min: usize,
        max: usize,
        too_long: Code,
    ) {
        let n = value.chars().count();
        if n < min || value.trim().is_empty() && min > 0 {
            self.add(
                field,
                Code::Required,
                format!("must not be empty (at least {min} character)"),
            );
        } else if n > max {
            self.add(
                field,
                too_long,
                format!("at most {max} characters, got {n}"),
            );
        }
    }
}

/// The values of a list seen so far, to find repeats in one pass (a set, not a scan of the
/// items before each one).
#[derive(Debug, Default)]
pub(crate) struct Seen<'a>(HashSet<&'a str>);

impl<'a> Seen<'a> {
    /// Whether `value` is seen for the first time.
    pub(crate) fn first(&mut self, value: &'a str) -> bool {
        self.0.insert(value)
    }
}

/// Parses a request body, naming the offending field's JSON path on failure. A body the
/// contract says is an object must be one: serde would read a struct from an array of its
/// fields' values too (`[null, null]`), which no client means.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(ObjectsOnly(&mut de)).map_err(body_error)?;
    de.end()
        .map_err(|e| ApiError::new(Code::InvalidJson, format!("invalid JSON: {e}")))?;
    Ok(parsed)
}

/// A deserializer that reads a struct from a JSON object only (serde's derived structs accept
/// a sequence of their fields too); everything else as `serde_json` reads it.
struct ObjectsOnly<D>(D);

impl<'de, D: serde::Deserializer<'de>> serde::Deserializer<'de> for ObjectsOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_option(visitor)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    // The rest are read from what the JSON says: a request body is an object, so only a struct
    // needs telling apart.
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

fn body_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let path = (path != ".").then_some(path);
    let message = error.inner().to_string();
    // serde_json appends the position; the field path says more to a client.
    let message = match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    };
    if let Some(name) = unknown_field_name(&message) {
        // The path usually ends at the unknown field itself; inside an internally tagged enum
        // (the EULA) serde buffers the object and the path stops at its parent.
        let ends_at_field = matches!(
            error.path().iter().next_back(),
            Some(serde_path_to_error::Segment::Map { key }) if key == name
        );
        let field = match path {
            Some(path) if ends_at_field => path,
            Some(parent) => format!("{parent}.{name}"),
            None => name.to_owned(),
        };
        return ApiError::validation(vec![FieldError::new(field, Code::UnknownField, message)]);
    }
    match path {
        Some(field) => {
            ApiError::validation(vec![FieldError::new(field, Code::InvalidJson, message)])
        }
        None => ApiError::new(
            Code::InvalidJson,
            format!("not valid JSON for this request: {message}"),
        ),
    }
}

/// A percent-encoded path segment, decoded (`%2F` → `/`); a `+` stays a plus, as in paths.
pub(crate) fn path_segment(segment: &str) -> String {
    form_urlencoded::parse(format!("s={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The field serde's "unknown field `name`, expected ..." message is about.
fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_counts_characters_not_bytes() {
        let mut e = Errors::new();
        e.text("f", &"价".repeat(300), 1, 300, Code::TooLong);
        assert!(
            e.finish().is_ok(),
            "300 three-byte characters fit a 300-character limit"
        );
        let mut e = Errors::new();
        e.text("f", &"价".repeat(301), 1, 300, Code::TooLong);
        let err = e.finish().unwrap_err();
        assert_eq!(err.code, Code::TooLong);
        assert_eq!(err.errors[0].field, "f");
    }

    #[test]
    fn blank_text_is_missing() {
        let mut e = Errors::new();
        e.text("f", "   ", 1, 10, Code::TooLong);
        assert_eq!(e.finish().unwrap_err().code, Code::Required);
    }
}
