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

    /// The header row and the rows of a CSV export (`text/csv; charset=utf-8`), read by a
    /// standard reader (the `csv` crate): a row that is not RFC 4180 fails the test.
    #[track_caller]
    pub fn csv(&self) -> (Vec<String>, Vec<Vec<String>>) {
        assert_eq!(
            self.header("content-type"),
            Some("text/csv; charset=utf-8"),
            "body: {}",
            self.text()
        );
        let mut reader = csv::Reader::from_reader(self.body.as_slice());
        let header = reader
            .headers()
            .expect("a header row")
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = reader
            .records()
            .map(|r| {
                r.expect("an RFC 4180 row")
                    .iter()
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
        (header, rows)
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

/// JSON list items as an export writes them: per item, its `header` fields in order (a string
/// as it is, `null` empty, anything else as JSON).
pub fn csv_rows(header: &[String], items: &[Json]) -> Vec<Vec<String>> {
    let field = |value: &Json| match value {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    items
        .iter()
        .map(|item| header.iter().map(|c| field(&item[c.as_str()])).collect())
        .collect()
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
