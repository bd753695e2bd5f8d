//! `openapi.yaml` as the harness reads it: its operations (path template × method), what each
//! takes and answers, the documented problem codes and their statuses, and validators for its
//! schemas. Read at test time, so the fuzzer holds the code to the document as it is now.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value as Json, json};

/// The whole contract, parsed once per test process.
pub(crate) struct Contract {
    pub doc: Json,
    pub operations: Vec<Operation>,
    /// Every problem `code` of the `ProblemCode` schema, with the status its description files
    /// it under.
    pub codes: BTreeMap<String, u16>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// One operation: a method on a path template.
#[derive(Debug)]
pub(crate) struct Operation {
    pub id: String,
    pub method: String,
    pub template: String,
    pub tag: String,
    /// The roles its description names (`**Roles:** …`); empty for "any" and public ones.
    pub roles: Vec<String>,
    pub parameters: Vec<Parameter>,
    /// Media type → schema of the request body, when the operation takes one.
    pub body: BTreeMap<String, Json>,
    pub responses: BTreeMap<u16, Answer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    Path,
    Query,
    Header,
}

#[derive(Debug, Clone)]
pub(crate) struct Parameter {
    pub name: String,
    pub location: Location,
    pub schema: Json,
}

/// A documented response: its media types (with their schemas) and headers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answer {
    pub content: BTreeMap<String, Option<Json>>,
    pub headers: Vec<HeaderSpec>,
}

#[derive(Debug, Clone)]
pub(crate) struct HeaderSpec {
    pub name: String,
    pub required: bool,
    pub schema: Option<Json>,
}

/// What a request's method and path are, as far as the contract knows.
pub(crate) enum Route<'a> {
    Operation(&'a Operation),
    /// A documented path, not with this method: the methods it does take, and whether a path
    /// parameter is outside its `enum` (such a path does not exist: `404` for any method).
    OtherMethod {
        methods: BTreeSet<String>,
        off_enum: bool,
    },
    /// No documented path.
    Unknown,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

impl Contract {
    pub(crate) fn get() -> &'static Contract {
        static CONTRACT: OnceLock<Contract> = OnceLock::new();
        CONTRACT.get_or_init(|| {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
            let text = std::fs::read_to_string(path).expect("openapi.yaml is readable");
            Contract::parse(&text)
        })
    }

    pub(crate) fn parse(yaml: &str) -> Contract {
        let doc: Json = serde_yaml_ng::from_str(yaml).expect("openapi.yaml is YAML");
        let mut operations = Vec::new();
        for (template, item) in doc["paths"].as_object().expect("paths") {
            let shared = item["parameters"].as_array().cloned().unwrap_or_default();
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                operations.push(operation(&doc, template, method, &shared, op));
            }
        }
        let codes = documented_codes(&doc);
        Contract {
            doc,
            operations,
            codes,
            validators: Mutex::default(),
        }
    }

    /// The operation a request's method and path (without its query) stand for. Like OpenAPI
    /// tools, a literal segment wins over a template one (`/catalog/categories` is not the
    /// product `categories`); segments are compared raw, split before percent-decoding, as the
    /// handlers split them.
    pub(crate) fn route(&self, method: &str, path: &str) -> Route<'_> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(Vec<bool>, &str)> = None;
        for op in &self.operations {
            if let Some(score) = literal_matches(&op.template, &segments)
                && best.as_ref().is_none_or(|(b, _)| score > *b)
            {
                best = Some((score, &op.template));
            }
        }
        let Some((_, template)) = best else {
            return Route::Unknown;
        };
        let on_path: Vec<&Operation> = self
            .operations
            .iter()
            .filter(|o| o.template == template)
            .collect();
        if let Some(op) = on_path
            .iter()
            .find(|o| o.method.eq_ignore_ascii_case(method))
        {
            return Route::Operation(op);
        }
        let off_enum = template.split('/').zip(&segments).any(|(part, segment)| {
            let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
                return false;
            };
            let schema = on_path[0]
                .parameters
                .iter()
                .find(|p| p.name == name && p.location == Location::Path)
                .map(|p| resolve(&self.doc, &p.schema));
            schema
                .and_then(|s| s["enum"].as_array())
                .is_some_and(|values| !values.contains(&Json::String(percent_decoded(segment))))
        });
        Route::OtherMethod {
            methods: on_path.iter().map(|o| o.method.clone()).collect(),
            off_enum,
        }
    }

    /// The largest body a request to `path` may carry: the `x-body-limit` of the path item
    /// whose template the path matches (by the value of the path parameter it names), else the
    /// document's `x-body-limit`.
    pub(crate) fn body_limit(&self, path: &str) -> usize {
        let default = self.doc["x-body-limit"]
            .as_u64()
            .expect("openapi.yaml states its x-body-limit");
        let segments: Vec<&str> = path.split('/').collect();
        let template = self
            .operations
            .iter()
            .filter_map(|op| literal_matches(&op.template, &segments).map(|s| (s, &op.template)))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, t)| t);
        let by_parameter = template.and_then(|t| {
            let limits = self.doc["paths"][t.as_str()]["x-body-limit"].as_object()?;
            let (name, values) = limits.iter().next()?;
            let at = t
                .split('/')
                .position(|part| part == format!("{{{name}}}"))?;
            let value = percent_decoded(segments.get(at)?);
            values[value.as_str()].as_u64()
        });
        usize::try_from(by_parameter.unwrap_or(default)).expect("a limit in bytes")
    }

    /// A documented response of `components/responses` (those no operation names, for the
    /// answers every path gives: 404 for unknown paths, 405 for other methods).
    pub(crate) fn shared_answer(&self, name: &str) -> Answer {
        let r = &self.doc["components"]["responses"][name];
        assert!(r.is_object(), "components/responses/{name} is documented");
        answer(&self.doc, r)
    }

    /// Validates `instance` against `schema` (which may `$ref` the document's components) as
    /// JSON Schema 2020-12 with formats checked; the errors, when any.
    pub(crate) fn validate(&self, schema: &Json, instance: &Json) -> Result<(), String> {
        let key = schema.to_string();
        let validator = {
            let mut cache = self.validators.lock().expect("the validators");
            match cache.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let v = Arc::new(self.compile(schema));
                    cache.insert(key, v.clone());
                    v
                }
            }
        };
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn compile(&self, schema: &Json) -> jsonschema::Validator {
        // The schema under `$defs`, beside the document's components, so that its
        // `#/components/schemas/…` references resolve against this root.
        let root = json!({
            "$ref": "#/$defs/target",
            "$defs": {"target": schema},
            "components": self.doc["components"],
        });
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("a schema of openapi.yaml does not compile: {e}"))
    }
}

/// `value` with its `$ref`s followed (a Reference Object's siblings only describe it).
pub(crate) fn resolve<'a>(doc: &'a Json, mut value: &'a Json) -> &'a Json {
    while let Some(reference) = value.get("$ref").and_then(Json::as_str) {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local references are used: {reference}"));
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} is not in openapi.yaml"));
    }
    value
}

fn operation(doc: &Json, template: &str, method: &str, shared: &[Json], op: &Json) -> Operation {
    let id = op["operationId"].as_str().unwrap_or(template).to_owned();
    let mut parameters: Vec<Parameter> = Vec::new();
    let own = op["parameters"].as_array().cloned().unwrap_or_default();
    for p in shared.iter().chain(own.iter()) {
        let p = resolve(doc, p);
        let location = match p["in"].as_str() {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            Some("header") => Location::Header,
            other => panic!("{id}: parameter location {other:?} is not fuzzed"),
        };
        let name = p["name"].as_str().expect("a parameter name").to_owned();
        // An operation's parameter overrides the path's of the same name and location.
        parameters.retain(|q| !(q.name == name && q.location == location));
        parameters.push(Parameter {
            name,
            location,
            schema: p["schema"].clone(),
        });
    }
    let body = match op.get("requestBody") {
        Some(b) => resolve(doc, b)["content"]
            .as_object()
            .expect("a request body has content")
            .iter()
            .map(|(media, c)| (media.clone(), c["schema"].clone()))
            .collect(),
        None => BTreeMap::new(),
    };
    let responses = op["responses"]
        .as_object()
        .expect("an operation has responses")
        .iter()
        .map(|(status, r)| {
            let status: u16 = status
                .parse()
                .unwrap_or_else(|_| panic!("{id}: status {status} is not a number"));
            (status, answer(doc, r))
        })
        .collect();
    Operation {
        id,
        method: method.to_ascii_uppercase(),
        template: template.to_owned(),
        tag: op["tags"][0].as_str().unwrap_or_default().to_owned(),
        roles: roles(op["description"].as_str().unwrap_or_default()),
        parameters,
        body,
        responses,
    }
}

fn answer(doc: &Json, response: &Json) -> Answer {
    let response = resolve(doc, response);
    let content = response["content"]
        .as_object()
        .map(|c| {
            c.iter()
                .map(|(media, m)| (media.clone(), m.get("schema").cloned()))
                .collect()
        })
        .unwrap_or_default();
    let headers = response["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(name, spec)| {
                    let spec = resolve(doc, spec);
                    HeaderSpec {
                        name: name.clone(),
                        required: spec["required"].as_bool().unwrap_or(false),
                        schema: spec.get("schema").cloned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Answer { content, headers }
}

/// The roles of a `**Roles:** …` sentence, asides in parentheses left out (`provider (own
/// products only; operators get 403)` is for providers).
fn roles(description: &str) -> Vec<String> {
    let Some((_, sentence)) = description.split_once("**Roles:**") else {
        return Vec::new();
    };
    let mut depth = 0;
    let mut plain = String::new();
    for c in sentence.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '.' if depth == 0 => break,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = plain.split(|c: char| !c.is_ascii_alphabetic()).collect();
    ["operator", "provider", "customer", "platform"]
        .into_iter()
        .filter(|role| words.contains(role))
        .map(String::from)
        .collect()
}

/// For each segment of the template, whether it is a literal that matches; `None` when the
/// path is not this template's at all.
fn literal_matches(template: &str, segments: &[&str]) -> Option<Vec<bool>> {
    let parts: Vec<&str> = template.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    parts
        .iter()
        .zip(segments)
        .map(|(part, segment)| {
            if part.starts_with('{') {
                Some(false)
            } else {
                (part == segment).then_some(true)
            }
        })
        .collect()
}

/// The `ProblemCode` enum with the status each code is filed under in its description: the
/// headings `**400 Bad Request …**` followed by bullets `` - `Code`: … ``, or a heading that
/// names its one code (`` **401 Unauthorized** — `Unauthorized`: … ``).
fn documented_codes(doc: &Json) -> BTreeMap<String, u16> {
    let schema = &doc["components"]["schemas"]["ProblemCode"];
    let description = schema["description"]
        .as_str()
        .expect("ProblemCode is described");
    let mut filed = BTreeMap::new();
    let mut status = 0;
    for line in description.lines() {
        if let Some(heading) = line.strip_prefix("**") {
            status = heading
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if let Some((_, rest)) = heading.split_once("** — `") {
                filed.insert(first_code(rest), status);
            }
        } else if let Some(rest) = line.strip_prefix("- `") {
            filed.insert(first_code(rest), status);
        }
    }
    schema["enum"]
        .as_array()
        .expect("ProblemCode is an enum")
        .iter()
        .map(|c| {
            let code = c.as_str().expect("a code").to_owned();
            let status = filed.get(&code).copied().unwrap_or(0);
            (code, status)
        })
        .collect()
}

/// A path segment as the handlers read it.
fn percent_decoded(segment: &str) -> String {
    let query = format!("s={}", segment.replace('+', "%2B"));
    form_urlencoded::parse(query.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn first_code(text: &str) -> String {
    text.split('`').next().unwrap_or_default().to_owned()
}
