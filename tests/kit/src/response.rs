//! An HTTP response as every layer sees it, and the assertions the tests make on it.

use serde_json::Value as Json;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The problem `code` of an error response.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts a problem document (RFC 9457) with this status and code, and returns it.
    #[track_caller]
    pub fn problem(self, status: u16, code: &str) -> Json {
        let r = self.expect(status);
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            r.text()
        );
        let problem = r.json();
        assert_eq!(problem["code"], code, "body: {problem}");
        assert_eq!(problem["status"], status, "body: {problem}");
        problem
    }
}

/// The `field` of each error of a problem document, in order.
pub fn error_fields(problem: &Json) -> Vec<&str> {
    problem_errors(problem, "field")
}

/// The `message` of each error of a problem document, in order.
pub fn error_messages(problem: &Json) -> Vec<&str> {
    problem_errors(problem, "message")
}

fn problem_errors<'a>(problem: &'a Json, key: &str) -> Vec<&'a str> {
    problem["errors"]
        .as_array()
        .expect("a problem document lists its errors")
        .iter()
        .map(|e| {
            e[key]
                .as_str()
                .expect("every error names its field and message")
        })
        .collect()
}
