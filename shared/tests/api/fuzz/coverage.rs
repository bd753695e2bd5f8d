//! The contract and the code name the same things: every documented operation is fuzzed and
//! answered by a route, every `POST` authenticates first, every other method of a documented
//! path is 405 with the documented `Allow`, and the problem codes the code can emit are the
//! documented ones, with their statuses.

use std::collections::BTreeMap;

use testkit::native::{ADMIN, TestApp};

use super::contract::{Contract, Location, Operation, resolve};
use super::{FUZZED_TAGS, oracle, requests};

#[test]
fn every_operation_has_a_generator() {
    let contract = Contract::get();
    assert!(
        contract.operations.len() >= 50,
        "openapi.yaml was read whole"
    );
    let mut gaps = Vec::new();
    for op in &contract.operations {
        if !FUZZED_TAGS.contains(&op.tag.as_str()) {
            gaps.push(format!("{}: tag {:?} has no fuzz test", op.id, op.tag));
        }
        for gap in requests::gaps(op) {
            gaps.push(format!("{}: no generator for its {gap}", op.id));
        }
    }
    assert!(gaps.is_empty(), "{}", gaps.join("\n"));
}

/// The path of `op` with each parameter filled in by a value of the right shape.
fn probe_path(op: &Operation) -> String {
    let mut path = op.template.clone();
    for p in op
        .parameters
        .iter()
        .filter(|p| p.location == Location::Path)
    {
        let value = match (&p.schema["enum"][0], &p.schema["minimum"]) {
            (serde_json::Value::String(first), _) => first.clone(),
            (_, serde_json::Value::Number(min)) => min.to_string(),
            _ => "x-0".to_owned(),
        };
        path = path.replace(&format!("{{{}}}", p.name), &value);
    }
    path
}

#[test]
fn every_documented_operation_is_answered_by_a_route() {
    let app = TestApp::new();
    let contract = Contract::get();
    let mut unrouted = Vec::new();
    for op in &contract.operations {
        let path = probe_path(op);
        let req = http::Request::builder()
            .method(op.method.as_str())
            .uri(&path)
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Vec::new())
            .expect("a request");
        let r = app.send(req);
        let route_not_found = r.status == 404 && r.json()["detail"] == "route not found";
        if route_not_found || r.status == 405 {
            unrouted.push(format!("{} {path}: {} {}", op.method, r.status, r.text()));
        }
    }
    assert!(unrouted.is_empty(), "{}", unrouted.join("\n"));
}

/// Every `POST` answers a request without a token with 401 before it does anything, even one
/// that carries an `Idempotency-Key`: the key is examined only for a request some route takes,
/// which the API finds out by serving it without its token (`api::routed`), so a `POST` that
/// acted before authenticating would act twice.
#[test]
fn every_post_without_a_token_is_401_and_changes_nothing() {
    let app = TestApp::new();
    let contract = Contract::get();
    let before = app.snapshot();
    let posts: Vec<&Operation> = contract
        .operations
        .iter()
        .filter(|op| op.method == "POST")
        .collect();
    assert!(
        posts.len() >= 18,
        "every POST of openapi.yaml: {}",
        posts.len()
    );
    let mut acting = Vec::new();
    for op in posts {
        let path = probe_path(op);
        let req = http::Request::builder()
            .method("POST")
            .uri(&path)
            .header("idempotency-key", "anonymous-probe")
            .header("content-type", "application/json")
            .body(b"{}".to_vec())
            .expect("a request");
        let r = app.send(req);
        if r.status != 401 {
            acting.push(format!("POST {path}: {} {}", r.status, r.text()));
        }
    }
    assert!(acting.is_empty(), "{}", acting.join("\n"));
    assert_eq!(app.snapshot(), before);
}

/// Every operation that authenticates its caller (it documents 401) may be answered 429 once
/// the client's address failed too often (docs/RULES.md R2.10), so it documents 429 too: an
/// operation added without it would surprise a client at the worst moment.
#[test]
fn every_operation_that_authenticates_documents_429() {
    let contract = Contract::get();
    let undocumented: Vec<String> = contract
        .operations
        .iter()
        .filter(|op| op.responses.contains_key(&401) && !op.responses.contains_key(&429))
        .map(|op| format!("{} {}", op.method, op.template))
        .collect();
    assert!(undocumented.is_empty(), "{}", undocumented.join("\n"));
}

#[test]
fn other_methods_of_a_documented_path_are_405_with_its_allow() {
    let app = TestApp::new();
    let contract = Contract::get();
    let mut paths: BTreeMap<&str, &Operation> = BTreeMap::new();
    for op in &contract.operations {
        paths.entry(op.template.as_str()).or_insert(op);
    }
    let mut wrong = Vec::new();
    for op in paths.values() {
        let path = probe_path(op);
        for method in [
            "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
        ] {
            if contract
                .operations
                .iter()
                .any(|o| o.template == op.template && o.method == method)
            {
                continue;
            }
            let req = http::Request::builder()
                .method(method)
                .uri(&path)
                .body(Vec::new())
                .expect("a request");
            let r = app.send(req);
            let request = oracle::Request {
                method,
                path: &path,
                content_type: None,
                body: b"",
            };
            if let Err(e) = oracle::check(contract, &request, &r) {
                wrong.push(format!("{method} {path}: {e}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The variants of `enum Code` in `shared/src/error.rs`, each with the status `Code::status`
/// gives it: read from the source, as the enum has no list of itself.
fn codes_in_the_code() -> BTreeMap<String, u16> {
    let source = include_str!("../../../src/error.rs");
    let body = |start: &str, end: &str| -> &str {
        let from = source
            .find(start)
            .unwrap_or_else(|| panic!("{start} in error.rs"))
            + start.len();
        let to = from
            + source[from..]
                .find(end)
                .unwrap_or_else(|| panic!("{end:?} in error.rs"));
        &source[from..to]
    };
    let variants: Vec<String> = body("pub enum Code {", "\n}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && l.ends_with(','))
        .map(|l| l.trim_end_matches(',').to_owned())
        .collect();
    let mut statuses = BTreeMap::new();
    for arm in body("match self {", "\n        }").split(',') {
        let Some((names, status)) = arm.split_once("=>") else {
            continue;
        };
        let constant = status.trim().trim_start_matches("StatusCode::");
        let code = (100..600)
            .filter_map(|n| http::StatusCode::from_u16(n).ok())
            .find(|s| {
                s.canonical_reason()
                    .is_some_and(|r| r.to_ascii_uppercase().replace([' ', '-'], "_") == constant)
            })
            .unwrap_or_else(|| panic!("StatusCode::{constant} is a status"));
        for name in names.split('|') {
            statuses.insert(name.trim().to_owned(), code.as_u16());
        }
    }
    variants
        .into_iter()
        .map(|v| {
            let status = statuses.get(&v).copied().unwrap_or(0);
            (v, status)
        })
        .collect()
}

#[test]
fn the_problem_codes_are_the_documented_ones_with_their_statuses() {
    let in_code = codes_in_the_code();
    assert!(in_code.len() > 50, "error.rs was read: {in_code:?}");
    let documented = &Contract::get().codes;
    assert_eq!(
        &in_code, documented,
        "error.rs Code (left) against openapi.yaml ProblemCode (right)"
    );
    let statuses: Vec<u64> = Contract::get().doc["components"]["schemas"]["Problem"]["properties"]
        ["status"]["enum"]
        .as_array()
        .expect("Problem.status lists the statuses")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect();
    for (code, status) in documented {
        assert!(
            statuses.contains(&u64::from(*status)),
            "{code}'s {status} is not in Problem.status"
        );
    }
}

/// The examples of `openapi.yaml` (of responses and request bodies) are valid by their schemas:
/// a reader who copies one gets what the contract says.
#[test]
fn every_example_matches_its_schema() {
    let contract = Contract::get();
    let doc = &contract.doc;
    let mut wrong = Vec::new();
    let mut checked = 0;
    let mut check = |content: &serde_json::Value, at: String| {
        let Some(schema) = content.get("schema") else {
            return;
        };
        let mut examples: Vec<(String, &serde_json::Value)> = Vec::new();
        if let Some(example) = content.get("example") {
            examples.push((at.clone(), example));
        }
        for (name, e) in content["examples"].as_object().into_iter().flatten() {
            let e = resolve(doc, e);
            if let Some(value) = e.get("value") {
                examples.push((format!("{at} {name}"), value));
            }
        }
        for (at, example) in examples {
            checked += 1;
            if let Err(e) = contract.validate(schema, example) {
                wrong.push(format!("{at}: {e}"));
            }
        }
    };
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let Some(responses) = op.get("responses").and_then(|r| r.as_object()) else {
                continue;
            };
            for (status, response) in responses {
                let response = resolve(doc, response);
                for (media, content) in response["content"].as_object().into_iter().flatten() {
                    check(content, format!("{method} {path} {status} {media}"));
                }
            }
            let body = op.get("requestBody").map(|b| resolve(doc, b));
            for (media, content) in body
                .and_then(|b| b["content"].as_object())
                .into_iter()
                .flatten()
            {
                check(content, format!("{method} {path} request {media}"));
            }
        }
    }
    assert!(checked > 300, "the examples were read: {checked}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
