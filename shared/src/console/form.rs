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

/// The most fields a form may send: far above any page's (a pricing step of 20 items of 20
/// tiers has about 900).
pub(crate) const MAX_FIELDS: usize = 1_000;
/// The most segments a field's name may have (`billable_items[0].tiers[1].up_to` has 5).
const MAX_DEPTH: usize = 8;
/// The largest list index a field's name may hold: every list of a form is far shorter.
const MAX_INDEX: usize = 100;

/// A name past the limits: deeper than [`MAX_DEPTH`] or holding an index past [`MAX_INDEX`].
/// A field named `x[100000000]` would allocate a list of that length, and a name of 500,000
/// segments would recurse as deep; they are refused before anything is built.
struct PastLimits;

/// `a.b[0].c` → `a`, `b`, 0, `c`; `Ok(None)` for a name that is no path.
fn parse_name(path: &str) -> Result<Option<Vec<Segment>>, PastLimits> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if key.is_empty() {
            return Ok(None);
        }
        if out.len() >= MAX_DEPTH {
            return Err(PastLimits);
        }
        out.push(Segment::Key(key.to_owned()));
        if rest.is_empty() {
            continue;
        }
        let Some(rest) = rest.strip_suffix(']') else {
            return Ok(None);
        };
        for index in rest.split("][") {
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(None);
            }
            let index = index.parse::<usize>().ok().filter(|i| *i <= MAX_INDEX);
            match index {
                Some(i) if out.len() < MAX_DEPTH => out.push(Segment::Index(i)),
                _ => return Err(PastLimits),
            }
        }
    }
    Ok(Some(out))
}

/// `a.b[0].c` → `a`, `b`, 0, `c`; `None` for anything else, a name past the limits included.
fn parse_path(path: &str) -> Option<Vec<Segment>> {
    parse_name(path).ok().flatten()
}

/// 400 for a form past the limits of [`parse_path`] and [`MAX_FIELDS`].
fn form_too_large(detail: String) -> ApiError {
    ApiError::validation(vec![FieldError::new("form", Code::InvalidValue, detail)])
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

/// The JSON body of a form's fields: each named by its path, converted by its kind. A form of
/// more than [`MAX_FIELDS`] fields, or a name nested deeper than 8 or holding an index past 100,
/// is 400 before anything is built from it; a name that is no path is ignored.
pub(crate) fn to_json(pairs: &[(String, String)], kind: impl Fn(&str) -> Kind) -> ApiResult<Value> {
    if pairs.len() > MAX_FIELDS {
        return Err(form_too_large(format!(
            "a form has at most {MAX_FIELDS} fields, this one {}",
            pairs.len()
        )));
    }
    let mut paths = Vec::with_capacity(pairs.len());
    for (name, raw) in pairs.iter().filter(|(n, _)| !is_control(n)) {
        match parse_name(name) {
            Ok(Some(path)) => paths.push((name, raw, path)),
            Ok(None) => {}
            Err(PastLimits) => {
                return Err(form_too_large(format!(
                    "a field's name nests at most {MAX_DEPTH} deep and its indexes go up to \
                     {MAX_INDEX}: {}",
                    name.chars().take(80).collect::<String>()
                )));
            }
        }
    }
    let mut body = Value::Object(Map::new());
    for (name, raw, path) in paths {
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
    Ok(body)
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
            to_json(&form, kind).unwrap(),
            json!({
                "enterprise_only": true,
                "billable_items": [{"code": "Frequency", "tiers": [
                    {"up_to": "1000", "unit_price": "0.5"}, {"unit_price": "0.2"}]}],
                "tags": ["sql", "ha"]
            })
        );
    }

    /// A name's depth, its indexes and the number of fields are capped before anything is
    /// built: `x[100000000]` would allocate a list of a hundred million, a name of 500,000
    /// segments recurse that deep.
    #[test]
    fn forms_past_their_limits_are_refused_before_anything_is_built() {
        let refused = |p: &[(&str, &str)]| to_json(&pairs(p), |_| Kind::Text).unwrap_err();
        assert_eq!(refused(&[("x[100000000]", "1")]).status(), 400);
        assert_eq!(refused(&[("x[101]", "1")]).status(), 400);
        let deep = vec!["a"; 500_000].join(".");
        assert_eq!(refused(&[(deep.as_str(), "1")]).status(), 400);
        assert_eq!(refused(&[("a.b.c.d.e.f.g.h.i", "1")]).status(), 400);
        assert_eq!(refused(&[("a[1][2][3][4][5][6][7][8]", "1")]).status(), 400);
        let many: Vec<(String, String)> = (0..=MAX_FIELDS)
            .map(|i| (format!("f{i}"), "v".to_owned()))
            .collect();
        assert_eq!(to_json(&many, |_| Kind::Text).unwrap_err().status(), 400);
        // At the limits, accepted.
        let body = to_json(&pairs(&[("a.b.c.d.e.f.g[100]", "1")]), |_| Kind::Text).unwrap();
        assert_eq!(
            body["a"]["b"]["c"]["d"]["e"]["f"]["g"],
            json!(["1"]),
            "blanks compacted"
        );
        assert_eq!(
            to_json(&many[..MAX_FIELDS], |_| Kind::Text)
                .unwrap()
                .as_object()
                .unwrap()
                .len(),
            MAX_FIELDS
        );
        // A name that is no path at all is ignored, as before.
        assert_eq!(
            to_json(&pairs(&[("a[x]", "1")]), |_| Kind::Text).unwrap(),
            json!({})
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
