//! HTML forms and the domain's JSON bodies. An input is named by the JSON path of its value
//! (`billable_items[0].tiers[1].up_to`), the very path the domain's field errors name, so a form
//! becomes the body a domain function validates, and every refusal is shown beside its field —
//! all of them at once, as the domain reports them.

use maud::{Markup, html};
use serde_json::{Map, Value};

use super::http::Req;
use crate::error::{ApiError, ApiResult, Code, FieldError};

/// How a form field becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string; blank is absent (the domain calls a missing required field `Required`).
    Text,
    /// A checkbox after a hidden `false`: the last value sent wins.
    Bool,
    /// Comma-separated words: a list of strings.
    List,
}

/// Fields of the console's own, never part of a body.
fn is_control(name: &str) -> bool {
    name == super::CSRF_FIELD || name.starts_with('_')
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `a.b[0].c` → `a`, `b`, 0, `c`; `None` for anything else.
fn parse_path(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if key.is_empty() {
            return None;
        }
        out.push(Segment::Key(key.to_owned()));
        if !rest.is_empty() {
            rest = rest.strip_suffix(']')?;
            for index in rest.split("][") {
                out.push(Segment::Index(index.parse().ok()?));
            }
        }
    }
    Some(out)
}

fn insert(target: &mut Value, path: &[Segment], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *target = value;
        return;
    };
    let slot = match first {
        Segment::Key(k) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            target
                .as_object_mut()
                .map(|o| o.entry(k.clone()).or_insert(Value::Null))
        }
        Segment::Index(i) => {
            if !target.is_array() {
                *target = Value::Array(Vec::new());
            }
            target.as_array_mut().map(|a| {
                if a.len() <= *i {
                    a.resize(*i + 1, Value::Null);
                }
                &mut a[*i]
            })
        }
    };
    if let Some(slot) = slot {
        insert(slot, rest, value);
    }
}

/// Drops what a blank row of a repeated group left: nulls and empty objects from lists, empty
/// lists and objects from objects. A form shows a spare row for each list; left blank, it is no
/// item at all.
fn compact(value: &mut Value) {
    match value {
        Value::Array(items) => {
            items.iter_mut().for_each(compact);
            items.retain(|v| !is_blank(v));
        }
        Value::Object(fields) => {
            fields.values_mut().for_each(compact);
            fields.retain(|_, v| !is_blank(v));
        }
        _ => {}
    }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The JSON body of a form's fields: each named by its path, converted by its kind.
pub(crate) fn to_json(pairs: &[(String, String)], kind: impl Fn(&str) -> Kind) -> Value {
    let mut body = Value::Object(Map::new());
    for (name, raw) in pairs.iter().filter(|(n, _)| !is_control(n)) {
        let Some(path) = parse_path(name) else {
            continue;
        };
        let value = match kind(name) {
            Kind::Text if raw.trim().is_empty() => Value::Null,
            Kind::Text => Value::String(raw.clone()),
            Kind::Bool => Value::Bool(raw == "true"),
            Kind::List => Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(|w| Value::String(w.to_owned()))
                    .collect(),
            ),
        };
        insert(&mut body, &path, value);
    }
    compact(&mut body);
    body
}

/// The value at a form path in a body, if any.
pub(crate) fn value_at<'v>(body: &'v Value, path: &str) -> Option<&'v Value> {
    parse_path(path)?
        .iter()
        .try_fold(body, |v, segment| match segment {
            Segment::Key(k) => v.get(k),
            Segment::Index(i) => v.get(i),
        })
}

/// What an input shows for the value at `path`: text as it is, lists joined by commas.
pub(crate) fn text_at(body: &Value, path: &str) -> String {
    match value_at(body, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The element id of the input for `path`.
pub(crate) fn id_of(path: &str) -> String {
    let mut id = String::from("f-");
    for c in path.chars() {
        id.push(if c.is_ascii_alphanumeric() { c } else { '-' });
    }
    id
}

/// A form being shown: the values in its inputs and the refusals of its last submission.
pub(crate) struct Form<'a> {
    pub values: &'a Value,
    pub errors: &'a [FieldError],
}

impl<'a> Form<'a> {
    pub(crate) fn new(values: &'a Value, errors: &'a [FieldError]) -> Self {
        Self { values, errors }
    }

    fn errors_at(&self, path: &str) -> Vec<&'a FieldError> {
        self.errors.iter().filter(|e| e.field == path).collect()
    }

    /// The errors about `path` itself, under its label, with the id inputs point at.
    fn error_list(&self, path: &str) -> Markup {
        let errors = self.errors_at(path);
        html! {
            @if !errors.is_empty() {
                ul.field-errors id={ (id_of(path)) "-error" } {
                    @for e in errors { li { (e.message) " " span.code { "(" (e.code.as_str()) ")" } } }
                }
            }
        }
    }

    /// Errors about a whole group (`billable_items`, `eula`) rather than one input.
    pub(crate) fn group_errors(&self, path: &str) -> Markup {
        let errors = self.errors_at(path);
        html! {
            @if !errors.is_empty() {
                ul.field-errors id=(id_of(path)) {
                    @for e in errors { li { (e.message) " " span.code { "(" (e.code.as_str()) ")" } } }
                }
            }
        }
    }

    fn described(&self, path: &str) -> Option<String> {
        (!self.errors_at(path).is_empty()).then(|| format!("{}-error", id_of(path)))
    }

    pub(crate) fn text(&self, path: &str, label: &str, hint: Option<&str>) -> Markup {
        self.input(path, label, hint, "text")
    }

    pub(crate) fn input(&self, path: &str, label: &str, hint: Option<&str>, kind: &str) -> Markup {
        let invalid = self.described(path);
        html! {
            div.field.invalid[invalid.is_some()] {
                label for=(id_of(path)) { (label) }
                @if let Some(h) = hint { p.hint { (h) } }
                input id=(id_of(path)) name=(path) type=(kind) value=(text_at(self.values, path))
                    aria-invalid=[invalid.as_ref().map(|_| "true")]
                    aria-describedby=[invalid.as_deref()];
                (self.error_list(path))
            }
        }
    }

    pub(crate) fn textarea(&self, path: &str, label: &str, hint: Option<&str>) -> Markup {
        let invalid = self.described(path);
        html! {
            div.field.invalid[invalid.is_some()] {
                label for=(id_of(path)) { (label) }
                @if let Some(h) = hint { p.hint { (h) } }
                textarea id=(id_of(path)) name=(path) rows="4"
                    aria-invalid=[invalid.as_ref().map(|_| "true")]
                    aria-describedby=[invalid.as_deref()] { (text_at(self.values, path)) }
                (self.error_list(path))
            }
        }
    }

    /// A choice among `options` (value, label); an empty value stands for "none".
    pub(crate) fn select(&self, path: &str, label: &str, options: &[(&str, &str)]) -> Markup {
        let invalid = self.described(path);
        let current = text_at(self.values, path);
        html! {
            div.field.invalid[invalid.is_some()] {
                label for=(id_of(path)) { (label) }
                select id=(id_of(path)) name=(path)
                    aria-invalid=[invalid.as_ref().map(|_| "true")]
                    aria-describedby=[invalid.as_deref()] {
                    @for (value, text) in options {
                        option value=(value) selected[current == *value] { (text) }
                    }
                }
                (self.error_list(path))
            }
        }
    }

    /// A yes/no: a hidden `false` first, so an unchecked box still says no.
    pub(crate) fn checkbox(&self, path: &str, label: &str) -> Markup {
        let invalid = self.described(path);
        let checked = value_at(self.values, path) == Some(&Value::Bool(true));
        html! {
            div.field.check.invalid[invalid.is_some()] {
                input type="hidden" name=(path) value="false";
                input id=(id_of(path)) name=(path) type="checkbox" value="true" checked[checked]
                    aria-describedby=[invalid.as_deref()];
                label for=(id_of(path)) { (label) }
                (self.error_list(path))
            }
        }
    }

    /// At the top of a refused form: what was refused, every field error linked to its field.
    pub(crate) fn summary(&self, problem: Option<&ApiError>) -> Markup {
        html! {
            @if let Some(p) = problem {
                div.summary role="alert" tabindex="-1" {
                    p { strong { (p.detail) } }
                    @if !self.errors.is_empty() {
                        ul {
                            @for e in self.errors {
                                li { a href={ "#" (id_of(&e.field)) } { code { (e.field) } } ": " (e.message) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One part of a `multipart/form-data` body: a field, or a file with its declared type.
pub(crate) struct Part {
    pub name: String,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The parts of a `multipart/form-data` body (RFC 7578), as browsers send file uploads.
pub(crate) fn multipart(content_type: &str, body: &[u8]) -> ApiResult<Vec<Part>> {
    let malformed = || ApiError::new(Code::InvalidValue, "the upload is not a complete form");
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(malformed)?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut at = find(body, &delimiter, 0).ok_or_else(malformed)? + delimiter.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(parts);
        }
        let headers_start = at + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start).ok_or_else(malformed)?;
        let headers = String::from_utf8_lossy(&body[headers_start..headers_end]);
        let data_start = headers_end + 4;
        let mut closing = b"\r\n".to_vec();
        closing.extend(&delimiter);
        let data_end = find(body, &closing, data_start).ok_or_else(malformed)?;
        let mut part = Part {
            name: String::new(),
            content_type: None,
            filename: None,
            data: body[data_start..data_end].to_vec(),
        };
        for line in headers.split("\r\n") {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for param in value.split(';').map(str::trim) {
                        if let Some(v) = param.strip_prefix("name=") {
                            part.name = v.trim_matches('"').to_owned();
                        } else if let Some(v) = param.strip_prefix("filename=") {
                            part.filename = Some(v.trim_matches('"').to_owned());
                        }
                    }
                }
                "content-type" => part.content_type = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        parts.push(part);
        at = data_end + closing.len();
    }
}

/// A text field of the request's form, whichever way the browser encoded it.
pub(crate) fn field(req: &Req, name: &str) -> Option<String> {
    match req.header("content-type") {
        Some(ct) if ct.to_ascii_lowercase().starts_with("multipart/form-data") => {
            multipart(ct, &req.body)
                .ok()?
                .into_iter()
                .find(|p| p.name == name && p.filename.is_none())
                .map(|p| String::from_utf8_lossy(&p.data).into_owned())
        }
        _ => req
            .form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn paths_become_nested_json_and_blank_rows_disappear() {
        let form = pairs(&[
            ("csrf", "x"),
            ("enterprise_only", "false"),
            ("enterprise_only", "true"),
            ("billable_items[0].code", "Frequency"),
            ("billable_items[0].tiers[0].up_to", "1000"),
            ("billable_items[0].tiers[0].unit_price", "0.5"),
            ("billable_items[0].tiers[1].up_to", ""),
            ("billable_items[0].tiers[1].unit_price", "0.2"),
            ("billable_items[0].tiers[2].up_to", ""),
            ("billable_items[0].tiers[2].unit_price", " "),
            ("billable_items[1].code", ""),
            ("billable_items[1].tiers[0].up_to", ""),
            ("tags", "sql, ha,, "),
        ]);
        let kind = |name: &str| match name {
            "enterprise_only" => Kind::Bool,
            "tags" => Kind::List,
            _ => Kind::Text,
        };
        assert_eq!(
            to_json(&form, kind),
            json!({
                "enterprise_only": true,
                "billable_items": [{"code": "Frequency", "tiers": [
                    {"up_to": "1000", "unit_price": "0.5"}, {"unit_price": "0.2"}]}],
                "tags": ["sql", "ha"]
            })
        );
    }

    #[test]
    fn values_are_read_back_by_their_paths() {
        let body = json!({"a": {"b": [{"c": "x"}]}, "tags": ["p", "q"], "n": 3});
        assert_eq!(text_at(&body, "a.b[0].c"), "x");
        assert_eq!(text_at(&body, "tags"), "p, q");
        assert_eq!(text_at(&body, "n"), "3");
        assert_eq!(text_at(&body, "a.b[1].c"), "");
        assert_eq!(parse_path("a[x]"), None);
        assert_eq!(id_of("a.b[0].c"), "f-a-b-0--c");
    }

    #[test]
    fn every_field_error_is_shown_beside_its_input_and_in_the_summary() {
        let body = json!({"product_name": "<script>alert(1)</script>"});
        let errors = vec![
            FieldError::new("product_name", Code::TooLong, "at most 60 characters"),
            FieldError::new("billable_items", Code::Required, "at least one item"),
        ];
        let form = Form::new(&body, &errors);
        let input = form
            .text("product_name", "Product name", None)
            .into_string();
        assert!(input.contains("at most 60 characters"), "{input}");
        assert!(input.contains(r#"aria-invalid="true""#), "{input}");
        assert!(input.contains(r#"aria-describedby="f-product-name-error""#));
        assert!(
            input.contains("&lt;script&gt;"),
            "values are escaped: {input}"
        );
        assert!(!input.contains("<script>"));
        let group = form.group_errors("billable_items").into_string();
        assert!(group.contains("at least one item"), "{group}");
        let problem = ApiError::validation(errors.clone());
        let summary = form.summary(Some(&problem)).into_string();
        assert!(summary.contains(r##"href="#f-product-name""##), "{summary}");
        assert!(
            summary.contains(r##"href="#f-billable-items""##),
            "{summary}"
        );
    }

    #[test]
    fn a_multipart_upload_is_split_into_its_fields_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nt0k\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"logo.png\"\r\n\
Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n--Xy\r\n\r\n--XyZ--\r\n";
        let parts = multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data.as_slice()),
            ("csrf", &b"t0k"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("logo.png"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[1].data, b"\x89PNG\r\n\x1a\n--Xy\r\n");
        assert!(multipart("multipart/form-data; boundary=XyZ", b"--XyZ\r\nbroken").is_err());
        assert!(multipart("multipart/form-data", body).is_err());
    }
}
