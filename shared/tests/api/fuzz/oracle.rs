//! What every response must be, whatever was asked: never a 5xx; a status the contract
//! documents for the operation; a body of a documented media type that validates against the
//! documented schema and names no property the schema does not; headers as documented; a
//! problem document whose `code` is a documented one filed under the response's status; `413`
//! exactly for a body over its path's limit.

use serde_json::Value as Json;
use testkit::Response;

use super::contract::{Answer, Contract, Operation, Route, resolve};

/// A request as the oracle sees it.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    /// Without the query.
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// The codes of rules a JSON Schema states (types, enums, required and unknown properties,
/// lengths, item counts): a body the request schema accepts never earns them.
const SCHEMA_CODES: [&str; 4] = ["InvalidJson", "UnknownField", "TooLong", "TooMany"];

/// Checks one response to `request`; the violation, if any.
pub(crate) fn check(
    contract: &Contract,
    request: &Request,
    response: &Response,
) -> Result<(), String> {
    let (method, path) = (request.method, request.path);
    if response.status >= 500 {
        return Err(format!("a server error, {}", response.status));
    }
    // A body over the path's limit is refused before anything else, whatever the path and
    // method; no body within it ever is.
    let limit = contract.body_limit(path);
    match (request.body.len() > limit, response.status) {
        (true, 413) => {
            return conforms(
                contract,
                &contract.shared_answer("PayloadTooLarge"),
                response,
            );
        }
        (true, s) => {
            return Err(format!(
                "a body over the path's limit of {limit} bytes, yet {s}"
            ));
        }
        (false, 413) => {
            return Err(format!(
                "413 for a body within the path's limit of {limit} bytes"
            ));
        }
        (false, _) => {}
    }
    // A malformed X-Clock-Now is refused before routing, wherever the request goes.
    let clock = || contract.shared_answer("ClockHeaderInvalid");
    let answer = match contract.route(method, path) {
        Route::Operation(op) => {
            if response.status == 400 {
                schema_valid_body_not_refused_by_schema_rules(contract, op, request, response)?;
            }
            op.responses.get(&response.status).cloned().ok_or_else(|| {
                format!(
                    "{} {}: status {} is not documented",
                    op.method, op.template, response.status
                )
            })?
        }
        Route::OtherMethod { methods, off_enum } => match response.status {
            405 => {
                let allow = response.header("allow").unwrap_or_default();
                let allowed: std::collections::BTreeSet<String> = allow
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect();
                if allowed != methods {
                    return Err(format!(
                        "405 with Allow {allow:?}; openapi.yaml documents {methods:?} on this path"
                    ));
                }
                contract.shared_answer("MethodNotAllowed")
            }
            400 => clock(),
            404 if off_enum => contract.shared_answer("NotFound"),
            s => return Err(format!("{method} is not documented on this path, yet {s}")),
        },
        Route::Unknown => match response.status {
            404 => contract.shared_answer("NotFound"),
            400 => clock(),
            s => return Err(format!("no documented path, yet {s}")),
        },
    };
    conforms(contract, &answer, response)
}

/// A JSON body that the operation's request schema accepts is not refused for a rule the
/// schema states: the schema and the code agree on the body's shape.
fn schema_valid_body_not_refused_by_schema_rules(
    contract: &Contract,
    op: &Operation,
    request: &Request,
    response: &Response,
) -> Result<(), String> {
    let Ok(problem) = serde_json::from_slice::<Json>(&response.body) else {
        return Ok(());
    };
    let mut codes = vec![problem["code"].clone()];
    codes.extend(
        problem["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["code"].clone()),
    );
    let Some(code) = codes
        .iter()
        .filter_map(Json::as_str)
        .find(|c| SCHEMA_CODES.contains(c))
    else {
        return Ok(());
    };
    let json_declared = request
        .content_type
        .is_none_or(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    let Some(schema) = op.body.get("application/json") else {
        return Ok(());
    };
    let body = serde_json::from_slice::<Json>(request.body).ok();
    let Some(body) = body.filter(|_| json_declared) else {
        return Ok(());
    };
    let Some(decoded) = decoded_content(contract, schema, &body) else {
        return Ok(());
    };
    if contract.validate(schema, &decoded).is_ok() {
        return Err(format!(
            "a body valid by the request schema refused with {code}: {}",
            problem["detail"]
        ));
    }
    Ok(())
}

/// `body` with the JSON its strings hold where the schema says so (`contentSchema`, metering's
/// `Metering` as the cloud API sends it), for validation; `None` when such a string is not JSON.
fn decoded_content(contract: &Contract, schema: &Json, body: &Json) -> Option<Json> {
    let schema = resolve(&contract.doc, schema);
    let mut body = body.clone();
    let Some(object) = body.as_object_mut() else {
        return Some(body);
    };
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let property = resolve(&contract.doc, property);
        let holds_json = property["oneOf"]
            .as_array()
            .is_some_and(|branches| branches.iter().any(|b| b.get("contentSchema").is_some()));
        if let (true, Some(Json::String(text))) = (holds_json, object.get(name)) {
            let inner = serde_json::from_str(text).ok()?;
            object.insert(name.clone(), inner);
        }
    }
    Some(body)
}

/// The response is one of `answer`'s media types, with a body its schema accepts and the
/// documented headers.
fn conforms(contract: &Contract, answer: &Answer, response: &Response) -> Result<(), String> {
    for h in &answer.headers {
        match (response.header(&h.name), &h.schema) {
            (None, _) if h.required => return Err(format!("no {} header", h.name)),
            (Some(value), Some(schema)) => contract
                .validate(schema, &Json::from(value))
                .map_err(|e| format!("header {}: {e}", h.name))?,
            _ => {}
        }
    }
    let media = response
        .header("content-type")
        .map(|ct| ct.split(';').next().unwrap_or_default().trim().to_owned());
    let Some(media) = media else {
        if answer.content.is_empty() && response.body.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "no Content-Type; openapi.yaml documents {:?}",
            answer.content.keys().collect::<Vec<_>>()
        ));
    };
    let Some(schema) = answer.content.get(&media) else {
        return Err(format!(
            "Content-Type {media}; openapi.yaml documents {:?}",
            answer.content.keys().collect::<Vec<_>>()
        ));
    };
    if !media.ends_with("json") {
        return Ok(());
    }
    let body: Json = serde_json::from_slice(&response.body)
        .map_err(|e| format!("a {media} body that is not JSON ({e})"))?;
    if let Some(schema) = schema {
        contract
            .validate(schema, &body)
            .map_err(|e| format!("the body does not match the documented schema: {e}"))?;
        let mut extra = Vec::new();
        undocumented(contract, schema, &body, "", &mut extra);
        if !extra.is_empty() {
            return Err(format!(
                "the body has properties openapi.yaml does not document: {}",
                extra.join(", ")
            ));
        }
    }
    if media == "application/problem+json" {
        problem(contract, response.status, &body)?;
    }
    Ok(())
}

/// The object schemas that describe `value` under `schema`: `$ref`s followed, every part of an
/// `allOf`, and of a `oneOf`/`anyOf` the first branch `value` validates against.
fn shapes<'a>(contract: &'a Contract, schema: &'a Json, value: &Json) -> Vec<&'a Json> {
    let schema = resolve(&contract.doc, schema);
    let mut out = Vec::new();
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema[key].as_array()
            && let Some(branch) = branches
                .iter()
                .find(|b| contract.validate(b, value).is_ok())
        {
            out.extend(shapes(contract, branch, value));
        }
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(shapes(contract, part, value));
    }
    out.push(schema);
    out
}

/// Collects, into `out`, the paths of the properties of a response body that its schema does
/// not name: a schema that lists an object's `properties` documents all of them (unless it says
/// `additionalProperties`), so a field the code sends and the contract does not mention is a
/// gap in the contract, not a liberty of the code.
fn undocumented(contract: &Contract, schema: &Json, value: &Json, at: &str, out: &mut Vec<String>) {
    let shapes = shapes(contract, schema, value);
    match value {
        Json::Object(object) => {
            let listed = shapes.iter().any(|s| s.get("properties").is_some());
            let open = shapes.iter().any(|s| s["additionalProperties"] == true);
            for (name, field) in object {
                let path = format!("{at}/{name}");
                let declared: Vec<&Json> = shapes
                    .iter()
                    .filter_map(|s| s["properties"].get(name))
                    .collect();
                if !declared.is_empty() {
                    for d in declared {
                        undocumented(contract, d, field, &path, out);
                    }
                    continue;
                }
                let extra: Vec<&Json> = shapes
                    .iter()
                    .filter_map(|s| s.get("additionalProperties").filter(|a| a.is_object()))
                    .collect();
                if !extra.is_empty() {
                    for d in extra {
                        undocumented(contract, d, field, &path, out);
                    }
                } else if listed && !open {
                    out.push(path);
                }
            }
        }
        Json::Array(items) => {
            for s in &shapes {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        undocumented(contract, item_schema, item, &format!("{at}/{i}"), out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A problem's `status` is the response's, its `code` is filed under that status, and its
/// `type` names the code.
fn problem(contract: &Contract, status: u16, body: &Json) -> Result<(), String> {
    let code = body["code"].as_str().unwrap_or_default();
    if body["status"] != status {
        return Err(format!(
            "a {status} whose problem says status {}",
            body["status"]
        ));
    }
    match contract.codes.get(code) {
        Some(&filed) if filed == status => {}
        Some(&filed) => {
            return Err(format!(
                "{code} with status {status}; openapi.yaml files it under {filed}"
            ));
        }
        None => return Err(format!("{code:?} is not a documented problem code")),
    }
    let expected_type = format!("https://nestmarket.dev/problems/{code}");
    if body["type"] != expected_type.as_str() {
        return Err(format!("problem type {} for {code}", body["type"]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The oracle can fail: hand-made responses that break the contract each way are caught.

    use http::HeaderMap;
    use serde_json::json;

    use super::*;

    fn response(status: u16, content_type: Option<&str>, body: &Json) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert("content-type", ct.parse().unwrap());
        }
        if status == 401 {
            headers.insert("www-authenticate", "Bearer".parse().unwrap());
        }
        Response {
            status,
            headers,
            body: if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            },
        }
    }

    fn problem_body(status: u16, code: &str) -> Json {
        json!({"type": format!("https://nestmarket.dev/problems/{code}"), "title": "t",
               "status": status, "detail": "d", "code": code, "errors": []})
    }

    /// A problem document answered with its own status and code.
    fn problem_response(status: u16, code: &str) -> Response {
        response(
            status,
            Some("application/problem+json"),
            &problem_body(status, code),
        )
    }

    fn me() -> Json {
        json!({"id": "usr-admin", "role": "operator", "name": "built-in operator",
               "built_in": true, "created_at": "1970-01-01T00:00:00Z"})
    }

    fn verdict(method: &str, path: &str, r: &Response) -> Result<(), String> {
        let request = Request {
            method,
            path,
            content_type: None,
            body: b"",
        };
        check(Contract::get(), &request, r)
    }

    #[test]
    fn a_documented_answer_passes() {
        let ok = response(200, Some("application/json"), &me());
        verdict("GET", "/api/v1/me", &ok).unwrap();
        let unauthorized = problem_response(401, "Unauthorized");
        verdict("GET", "/api/v1/me", &unauthorized).unwrap();
    }

    #[test]
    fn a_server_error_is_caught_even_when_documented() {
        let r = problem_response(500, "Internal");
        assert!(
            verdict("GET", "/api/v1/me", &r)
                .unwrap_err()
                .contains("server error")
        );
    }

    #[test]
    fn an_undocumented_status_is_caught() {
        let r = problem_response(409, "InvalidTransition");
        let e = verdict("GET", "/api/v1/me", &r).unwrap_err();
        assert!(e.contains("not documented"), "{e}");
    }

    #[test]
    fn a_body_off_its_schema_is_caught() {
        let me_as = |body: &Json| {
            let r = response(200, Some("application/json"), body);
            verdict("GET", "/api/v1/me", &r).unwrap_err()
        };
        let mut body = me();
        body.as_object_mut().unwrap().remove("created_at");
        let e = me_as(&body);
        assert!(e.contains("created_at"), "{e}");
        body = me();
        body["created_at"] = json!("yesterday");
        let e = me_as(&body);
        assert!(e.contains("date-time"), "{e}");
    }

    #[test]
    fn a_property_the_schema_does_not_name_is_caught() {
        let mut body = me();
        body["secret"] = json!("x");
        let r = response(200, Some("application/json"), &body);
        let e = verdict("GET", "/api/v1/me", &r).unwrap_err();
        assert!(e.contains("/secret"), "{e}");
        let mut problem = problem_body(401, "Unauthorized");
        problem["errors"] = json!([{"field": "f", "code": "Required", "message": "m", "hint": 1}]);
        let mut r = response(401, Some("application/problem+json"), &problem);
        r.headers
            .insert("www-authenticate", "Bearer".parse().unwrap());
        let e = verdict("GET", "/api/v1/me", &r).unwrap_err();
        assert!(e.contains("/errors/0/hint"), "{e}");
    }

    #[test]
    fn a_body_is_413_exactly_when_it_is_over_its_paths_limit() {
        let too_large = problem_response(413, "PayloadTooLarge");
        let limit = |path: &str| Contract::get().body_limit(path);
        assert_eq!(limit("/api/v1/metering"), 1_048_576);
        assert_eq!(limit("/api/v1/products/p/media/logo"), 7_864_320);
        assert_eq!(limit("/api/v1/products/p/media/certification/7"), 2_097_152);
        assert_eq!(limit("/api/v1/products/p/media/nope"), 1_048_576);
        let sent = |method: &'static str, path: &'static str, size: usize, r: &Response| {
            let body = vec![0; size];
            let request = Request {
                method,
                path,
                content_type: None,
                body: &body,
            };
            check(Contract::get(), &request, r)
        };
        sent("POST", "/api/v1/nowhere", 1_048_577, &too_large).unwrap();
        sent(
            "POST",
            "/api/v1/products/p/media/logo",
            7_864_321,
            &too_large,
        )
        .unwrap();
        let e = sent(
            "POST",
            "/api/v1/products/p/media/logo",
            2_000_000,
            &too_large,
        )
        .unwrap_err();
        assert!(e.contains("within the path's limit"), "{e}");
        let not_found = problem_response(404, "NotFound");
        let e = sent("GET", "/api/v1/nowhere", 1_048_577, &not_found).unwrap_err();
        assert!(e.contains("over the path's limit"), "{e}");
    }

    #[test]
    fn a_wrong_or_missing_content_type_is_caught() {
        let problem = problem_body(401, "Unauthorized");
        let as_json = response(401, Some("application/json"), &problem);
        assert!(verdict("GET", "/api/v1/me", &as_json).is_err());
        let untyped = response(401, None, &problem);
        assert!(verdict("GET", "/api/v1/me", &untyped).is_err());
    }

    #[test]
    fn a_problem_code_off_the_list_or_its_status_is_caught() {
        let unknown = problem_response(404, "Gone");
        assert!(verdict("GET", "/api/v1/principals/x", &unknown).is_err());
        // NotFound is filed under 404, not 400.
        let misfiled = problem_response(400, "NotFound");
        let e = verdict("GET", "/api/v1/principals/x", &misfiled).unwrap_err();
        assert!(e.contains("files it under 404"), "{e}");
    }

    #[test]
    fn a_required_header_left_out_is_caught() {
        let mut r = problem_response(401, "Unauthorized");
        r.headers.remove("www-authenticate");
        let e = verdict("GET", "/api/v1/me", &r).unwrap_err();
        assert!(e.contains("WWW-Authenticate"), "{e}");
    }

    #[test]
    fn another_method_must_be_405_with_the_documented_allow() {
        let body = problem_body(405, "MethodNotAllowed");
        let mut r = response(405, Some("application/problem+json"), &body);
        r.headers.insert("allow", "GET".parse().unwrap());
        verdict("DELETE", "/api/v1/me", &r).unwrap();
        r.headers.insert("allow", "GET, POST".parse().unwrap());
        assert!(verdict("DELETE", "/api/v1/me", &r).is_err());
        let not_found = problem_response(404, "NotFound");
        assert!(verdict("DELETE", "/api/v1/me", &not_found).is_err());
    }

    #[test]
    fn a_schema_valid_body_refused_as_malformed_is_caught() {
        let refusal = problem_response(400, "UnknownField");
        fn posted(body: &[u8]) -> Request<'_> {
            Request {
                method: "POST",
                path: "/api/v1/principals",
                content_type: Some("application/json"),
                body,
            }
        }
        let valid = json!({"role": "provider", "name": "Acme"}).to_string();
        let e = check(Contract::get(), &posted(valid.as_bytes()), &refusal).unwrap_err();
        assert!(e.contains("valid by the request schema"), "{e}");
        // A body off the schema may well be refused so.
        let off_schema = br#"{"role": "provider", "nom": "Acme"}"#;
        check(Contract::get(), &posted(off_schema), &refusal).unwrap();
    }

    #[test]
    fn a_literal_path_wins_over_a_template() {
        let categories =
            json!({"items": [{"id": "databases", "name": "Databases", "name_zh": "数据库"}]});
        let r = response(200, Some("application/json"), &categories);
        verdict("GET", "/api/v1/catalog/categories", &r).unwrap();
        // The same body as a product of the catalog is off its schema.
        assert!(verdict("GET", "/api/v1/catalog/prod-1", &r).is_err());
    }
}
