//! Generated requests for one operation of the contract: its method (now and then another),
//! its path with real, missing and garbage ids, its documented query parameters (and an unknown
//! one), who calls (every principal, nobody, a retired or a garbage token), its documented
//! headers, and a body: schema-driven JSON, valid or with defects, garbage, or a media file.

use std::collections::BTreeSet;
use std::fmt;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value as Json;
use testkit::native::ADMIN;
use testkit::{jpeg, mp4, pdf, png};

use super::contract::{Contract, Location, Operation, Parameter};
use super::oracle;
use super::values::{Values, weighted};
use super::world::{World, pool_for};

/// One request, as generated; the caller is resolved to a token when it is sent.
#[derive(Clone)]
pub(crate) struct Case {
    pub method: String,
    pub path: String,
    pub query: String,
    pub caller: Caller,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone)]
pub(crate) enum Caller {
    Nobody,
    /// The world's principal at this index.
    As(usize, &'static str),
    /// A token a rotation retired (nobody's if none was).
    Retired,
    /// An `Authorization` header as is.
    Raw(Vec<u8>),
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Nobody => write!(f, "nobody"),
            Caller::As(_, name) => write!(f, "{name}"),
            Caller::Retired => write!(f, "a retired token"),
            Caller::Raw(bytes) => write!(
                f,
                "Authorization {:?}",
                shortened(&String::from_utf8_lossy(bytes))
            ),
        }
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        write!(
            f,
            "{} {}{} as {:?}, Content-Type {:?}, headers {:?}, body ({} bytes) {:?}",
            self.method,
            shortened(&self.path),
            shortened(&self.query),
            self.caller,
            self.content_type,
            self.headers,
            self.body.len(),
            shortened(&body),
        )
    }
}

/// At most 300 characters of `text`, saying how long it was when it is longer.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}…({} chars)", &text[..at], text.chars().count()),
        None => text.to_owned(),
    }
}

/// The longest path segment or query value sent: past every id, within what a URI carries.
const LONGEST_PART: usize = 4096;

fn capped(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(LONGEST_PART) {
        text.truncate(at);
    }
    text
}

impl Case {
    /// The request as the oracle judges it.
    pub(crate) fn request(&self) -> oracle::Request<'_> {
        oracle::Request {
            method: &self.method,
            path: &self.path,
            content_type: self.content_type.as_deref(),
            body: &self.body,
        }
    }
}

impl World {
    /// Sends a case to the app as one HTTP request.
    pub(crate) fn send(&self, case: &Case) -> testkit::Response {
        let mut req = http::Request::builder()
            .method(case.method.as_str())
            .uri(format!("{}{}", case.path, case.query));
        let authorization = match &case.caller {
            Caller::Nobody => None,
            Caller::As(i, _) => Some(format!("Bearer {}", self.token(*i)).into_bytes()),
            Caller::Retired => {
                Some(format!("Bearer {}", self.retired_token().unwrap_or_default()).into_bytes())
            }
            Caller::Raw(bytes) => Some(bytes.clone()),
        };
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        if let Some(ct) = &case.content_type {
            req = req.header("content-type", ct.as_str());
        }
        for (name, value) in &case.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let req = req
            .body(case.body.clone())
            .unwrap_or_else(|e| panic!("the harness generated an invalid request ({e}): {case:?}"));
        self.app.send(req)
    }
}

/// What is missing to fuzz `op`: its path parameters without a source of values, its request
/// media types without a body generator.
pub(crate) fn gaps(op: &Operation) -> Vec<String> {
    let mut gaps = Vec::new();
    for p in op
        .parameters
        .iter()
        .filter(|p| p.location == Location::Path)
    {
        let typed = p.schema.get("enum").is_some() || p.schema["type"] == "integer";
        if pool_for(&p.name).is_none() && !typed {
            gaps.push(format!("path parameter {{{}}}", p.name));
        }
    }
    for media in op.body.keys() {
        if !is_json(media) && !MEDIA_FILES.iter().any(|(m, _)| m == media) {
            gaps.push(format!("request body {media}"));
        }
    }
    gaps
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// How far a request strays from the contract.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// The documented method, the caller's own resources, valid parameters and body with the
    /// documented content type: requests that get past the checks to the rules behind them.
    ByTheBook,
    /// Anything: other methods and tenants, missing and garbage ids, defects and garbage.
    Anything,
}

/// The requests of `op`: by the book for each principal, anything for each principal and for
/// callers without a valid token.
pub(crate) fn cases(contract: &Contract, op: &Operation, world: &World) -> BoxedStrategy<Case> {
    let mut choices = Vec::new();
    for (i, principal) in world.principals.iter().enumerate() {
        let caller = Just(Caller::As(i, principal.name)).boxed();
        let own = Values {
            doc: &contract.doc,
            pools: world.own_pools(i),
        };
        // By the book is in a role the operation serves.
        if op.roles.is_empty() || op.roles.contains(&principal.role) {
            choices.push((
                6,
                requests(contract, op, &own, caller.clone(), Style::ByTheBook),
            ));
        }
        let all = Values {
            doc: &contract.doc,
            pools: world.pools.clone(),
        };
        choices.push((4, requests(contract, op, &all, caller, Style::Anything)));
    }
    let all = Values {
        doc: &contract.doc,
        pools: world.pools.clone(),
    };
    choices.push((
        8,
        requests(contract, op, &all, without_a_token(), Style::Anything),
    ));
    weighted(choices)
}

fn requests(
    contract: &Contract,
    op: &Operation,
    values: &Values,
    caller: BoxedStrategy<Caller>,
    style: Style,
) -> BoxedStrategy<Case> {
    let documented: BTreeSet<&str> = contract
        .operations
        .iter()
        .filter(|o| o.template == op.template)
        .map(|o| o.method.as_str())
        .collect();
    let others: Vec<String> = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]
        .into_iter()
        .filter(|m| !documented.contains(m))
        .map(String::from)
        .collect();
    let method = match style {
        Style::ByTheBook => Just(op.method.clone()).boxed(),
        Style::Anything => weighted(vec![
            (12, Just(op.method.clone()).boxed()),
            (1, select(others).boxed()),
        ]),
    };
    (
        method,
        path(contract, values, op, style),
        query(values, op, style),
        caller,
        headers(values, op, style),
        body(values, op, style),
    )
        .prop_map(
            |(method, path, query, caller, headers, (content_type, body))| Case {
                method,
                path,
                query,
                caller,
                content_type,
                headers,
                body,
            },
        )
        .boxed()
}

/// The template with each parameter filled in; now and then a segment more or a trailing
/// slash, which no route has.
fn path(
    contract: &Contract,
    values: &Values,
    op: &Operation,
    style: Style,
) -> BoxedStrategy<String> {
    let segments: Vec<BoxedStrategy<String>> = op
        .template
        .split('/')
        .map(
            |part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    let param = op
                        .parameters
                        .iter()
                        .find(|p| p.name == name && p.location == Location::Path)
                        .unwrap_or_else(|| panic!("{}: {{{name}}} is not declared", op.id));
                    segment(contract, values, param, style)
                }
                None => Just(part.to_owned()).boxed(),
            },
        )
        .collect();
    let tail = match style {
        Style::ByTheBook => select(vec![""]),
        Style::Anything => select(vec!["", "", "", "", "", "", "", "", "", "/", "/extra"]),
    };
    (segments, tail)
        .prop_map(|(segments, tail)| format!("{}{tail}", segments.join("/")))
        .boxed()
}

/// A path parameter: an id of the world (the caller's or another tenant's), the values of
/// its schema and of same-named parameters elsewhere (`logo` on a multi-item path), a missing
/// id, or garbage: empty, encoded slashes and dots, other scripts, broken escapes, overlong.
fn segment(
    contract: &Contract,
    values: &Values,
    param: &Parameter,
    style: Style,
) -> BoxedStrategy<String> {
    let anything = style == Style::Anything;
    let mut choices: Vec<(u32, BoxedStrategy<String>)> = Vec::new();
    if let Some(pool) = pool_for(&param.name).map(|p| values.pools.get(p).to_vec())
        && !pool.is_empty()
    {
        let missing: Vec<String> = pool
            .iter()
            .map(|id| match id.split_once('-') {
                Some((prefix, rest)) => format!("{prefix}-{}", "0".repeat(rest.len())),
                None => format!("{id}0"),
            })
            .collect();
        choices.push((8, select(pool).prop_map(|id| encode(&id)).boxed()));
        if anything {
            choices.push((1, select(missing).boxed()));
        }
    }
    if param.schema.get("enum").is_some() || param.schema["type"] == "integer" {
        let siblings: Vec<Json> = contract
            .operations
            .iter()
            .flat_map(|o| &o.parameters)
            .filter(|p| p.name == param.name)
            .flat_map(|p| p.schema["enum"].as_array().cloned().unwrap_or_default())
            .collect();
        let own = values.of(&param.schema, &param.name, anything);
        let mut typed = vec![(6, own.prop_map(|v| capped(encode(&plain(&v)))).boxed())];
        if anything && !siblings.is_empty() {
            typed.push((2, select(siblings).prop_map(|v| plain(&v)).boxed()));
        }
        choices.push((8, weighted(typed)));
    }
    if !anything {
        return weighted(choices);
    }
    let garbage = [
        "",
        "%2F",
        "..",
        "%2e%2e",
        "%E2%98%83",
        "%C0%AF",
        "%",
        "%zz",
        "%00",
        "usr-admin",
        "null",
        "-1",
        "1e9",
        "%20",
        "categories",
        "me",
    ];
    choices.push((2, select(garbage.map(String::from).to_vec()).boxed()));
    let text = proptest::collection::vec(any::<char>(), 1..12)
        .prop_map(|cs| encode(&cs.into_iter().collect::<String>()));
    choices.push((1, text.boxed()));
    choices.push((1, Just("a".repeat(LONGEST_PART)).boxed()));
    weighted(choices)
}

/// A JSON value as a path, query or header would carry it.
fn plain(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The documented query parameters, each there or not, valid or not; now and then an unknown
/// one, or a query string that is not well formed.
fn query(values: &Values, op: &Operation, style: Style) -> BoxedStrategy<String> {
    let anything = style == Style::Anything;
    let params: Vec<BoxedStrategy<Option<(String, String)>>> =
        parameters(values, op, Location::Query, anything)
            .into_iter()
            .map(|p| proptest::option::of(p).boxed())
            .collect();
    let extra = if anything {
        select(vec![
            "",
            "",
            "",
            "",
            "",
            "",
            "&unknown=1",
            "&limit=2&limit=x",
            "&%zz=%",
        ])
    } else {
        select(vec![""])
    };
    (params, extra)
        .prop_map(|(params, extra)| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (name, value) in params.into_iter().flatten() {
                q.append_pair(&name, &value);
            }
            let q = q.finish() + extra;
            match q.trim_start_matches('&') {
                "" => String::new(),
                q => format!("?{q}"),
            }
        })
        .boxed()
}

/// Callers without a valid token: none, a retired one, or an `Authorization` header that is
/// not a bearer token of anyone (some are the operator's, misspelt).
fn without_a_token() -> BoxedStrategy<Caller> {
    let raw = [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
        format!("Bearer nm_{}", "0".repeat(64)),
        format!("bearer {ADMIN}"),
        format!("Bearer  {ADMIN}"),
        ADMIN.to_owned(),
        format!("Bearer {}", "x".repeat(5000)),
    ];
    let mut raw: Vec<Vec<u8>> = raw.into_iter().map(String::into_bytes).collect();
    raw.push(b"Bearer \x80\xff".to_vec());
    weighted(vec![
        (1, Just(Caller::Nobody).boxed()),
        (1, Just(Caller::Retired).boxed()),
        (2, select(raw).prop_map(Caller::Raw).boxed()),
    ])
}

/// Values of `op`'s parameters in `location`, named, as text.
fn parameters(
    values: &Values,
    op: &Operation,
    location: Location,
    edgy: bool,
) -> Vec<BoxedStrategy<(String, String)>> {
    op.parameters
        .iter()
        .filter(|p| p.location == location)
        .map(|p| {
            let name = p.name.clone();
            values
                .of(&p.schema, &p.name, edgy)
                .prop_map(move |v| (name.clone(), capped(plain(&v))))
                .boxed()
        })
        .collect()
}

/// The documented header parameters (`X-Clock-Now`, …): mostly absent, else valid or not.
fn headers(values: &Values, op: &Operation, style: Style) -> BoxedStrategy<Vec<(String, String)>> {
    if style == Style::ByTheBook {
        return Just(Vec::new()).boxed();
    }
    let headers: Vec<BoxedStrategy<Option<(String, String)>>> =
        parameters(values, op, Location::Header, true)
            .into_iter()
            .map(|p| {
                // What a header can carry: no control characters.
                let value = p.prop_map(|(name, v)| Some((name, v.replace(char::is_control, ""))));
                weighted(vec![(3, Just(None).boxed()), (1, value.boxed())])
            })
            .collect();
    headers
        .prop_map(|hs| hs.into_iter().flatten().collect())
        .boxed()
}

type Body = (Option<String>, Vec<u8>);

/// The content type and body: for a JSON operation schema-driven values (valid, or with
/// defects) and garbage; for a media upload files of every kind; otherwise mostly nothing.
fn body(values: &Values, op: &Operation, style: Style) -> BoxedStrategy<Body> {
    let json_schema = op.body.iter().find(|(m, _)| is_json(m)).map(|(_, s)| s);
    let by_the_book = style == Style::ByTheBook;
    if let (Some(schema), true) = (json_schema, by_the_book) {
        let json = Just(Some("application/json".to_owned()));
        return (
            json,
            values
                .of(schema, "", false)
                .prop_map(|v| v.to_string().into_bytes()),
        )
            .boxed();
    }
    if let Some(schema) = json_schema {
        let valid = values
            .of(schema, "", false)
            .prop_map(|v| v.to_string().into_bytes());
        let edgy = values
            .of(schema, "", true)
            .prop_map(|v| v.to_string().into_bytes());
        let garbage = garbage(values.of(schema, "", false));
        let bodies = weighted(vec![
            (3, valid.boxed()),
            (5, edgy.boxed()),
            (2, garbage),
            (1, Just(Vec::new()).boxed()),
        ]);
        return (json_content_type(), bodies).boxed();
    }
    if !op.body.is_empty() {
        let labels: Vec<String> = op.body.keys().cloned().collect();
        return media(labels, style);
    }
    if by_the_book {
        return Just((None, Vec::new())).boxed();
    }
    let stray = weighted(vec![
        (8, Just(Vec::new()).boxed()),
        (1, Just(b"{\"a\":1}".to_vec()).boxed()),
        (1, proptest::collection::vec(any::<u8>(), 1..64).boxed()),
    ]);
    let label = weighted(vec![(8, Just(None).boxed()), (1, json_content_type())]);
    (label, stray).boxed()
}

fn json_content_type() -> BoxedStrategy<Option<String>> {
    let variants = ["application/json; charset=utf-8", "Application/JSON"];
    let wrong = [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ];
    weighted(vec![
        (12, Just(Some("application/json".to_owned())).boxed()),
        (
            2,
            select(variants.map(|v| Some(v.to_owned())).to_vec()).boxed(),
        ),
        (1, Just(None).boxed()),
        (
            2,
            select(wrong.map(|v| Some(v.to_owned())).to_vec()).boxed(),
        ),
    ])
}

/// Not JSON, or not the JSON the operation takes: random bytes, a valid body cut short, other
/// top-level types, a byte-order mark, repeated keys, nesting past any parser's depth.
fn garbage(valid: BoxedStrategy<Json>) -> BoxedStrategy<Vec<u8>> {
    let truncated = (valid.clone(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
        let text = v.to_string().into_bytes();
        let at = cut.index(text.len().max(1));
        text[..at].to_vec()
    });
    let bom = valid.prop_map(|v| [b"\xEF\xBB\xBF".to_vec(), v.to_string().into_bytes()].concat());
    let fixed = [
        "[]".to_owned(),
        "null".to_owned(),
        "1".to_owned(),
        "\"text\"".to_owned(),
        "{\"a\":1,\"a\":2}".to_owned(),
        "1e400".to_owned(),
        format!("{}{}", "[".repeat(100), "]".repeat(100)),
        format!("{}{}", "[".repeat(300), "]".repeat(300)),
        format!("{{\"x\":{}1{}}}", "{\"y\":".repeat(200), "}".repeat(200)),
    ];
    weighted(vec![
        (2, proptest::collection::vec(any::<u8>(), 0..128).boxed()),
        (2, truncated.boxed()),
        (1, bom.boxed()),
        (2, select(fixed.map(String::into_bytes).to_vec()).boxed()),
    ])
}

/// The media types a file of each generated kind is.
/// A file of `size` bytes whose first bytes say its type.
type FileOfSize = fn(usize) -> Vec<u8>;

const MEDIA_FILES: [(&str, FileOfSize); 4] = [
    ("image/png", |size| png(290, 290, size)),
    ("image/jpeg", jpeg),
    ("application/pdf", pdf),
    ("video/mp4", mp4),
];

/// Media uploads: files of every documented type (and PNGs of odd sizes, files at the kinds'
/// byte limits and one past), unknown bytes, nothing; labelled with their type, another
/// documented type, a variant spelling, or not at all.
fn media(labels: Vec<String>, style: Style) -> BoxedStrategy<Body> {
    let small = MEDIA_FILES.map(|(_, file)| file(64)).to_vec();
    let odd = vec![
        png(512, 256, 200),
        png(0, 0, 64),
        png(u32::MAX, 1, 64),
        b"\x89PNG\r\n\x1a\n".to_vec(),
        b"{\"logo\": true}".to_vec(),
        Vec::new(),
    ];
    // The limits of MediaKind's table: certification 2 MiB, logo 7.5 MiB, screenshot and
    // user guide 10 MiB; made when drawn, as they weigh megabytes.
    let limits: Vec<(FileOfSize, usize)> = vec![
        (MEDIA_FILES[0].1, 7_864_320),
        (MEDIA_FILES[0].1, 7_864_321),
        (jpeg, 2_097_153),
        (pdf, 10_485_761),
    ];
    if style == Style::ByTheBook {
        let own = MEDIA_FILES
            .map(|(label, file)| (Some(label.to_owned()), file(64)))
            .to_vec();
        return select(own).boxed();
    }
    let files = weighted(vec![
        (12, select(small).boxed()),
        (3, select(odd).boxed()),
        (2, proptest::collection::vec(any::<u8>(), 1..256).boxed()),
        (
            1,
            select(limits).prop_map(|(file, size)| file(size)).boxed(),
        ),
    ]);
    let variants: Vec<Option<String>> = labels
        .iter()
        .flat_map(|l| [Some(l.to_ascii_uppercase()), Some(format!("{l}; q=1"))])
        .chain([
            None,
            Some("application/octet-stream".to_owned()),
            Some("application/json".to_owned()),
        ])
        .collect();
    let documented: Vec<Option<String>> = labels.into_iter().map(Some).collect();
    // A file's own type most of the time, so uploads get through.
    files
        .prop_flat_map(move |bytes| {
            let own = MEDIA_FILES
                .iter()
                .find(|(_, file)| bytes.len() >= 12 && file(64)[..12] == bytes[..12])
                .map(|(m, _)| (*m).to_owned());
            let label = weighted(vec![
                (6, Just(own).boxed()),
                (2, select(documented.clone()).boxed()),
                (1, select(variants.clone()).boxed()),
            ]);
            (label, Just(bytes))
        })
        .boxed()
}
