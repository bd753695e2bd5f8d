//! A JSON HTTP server on loopback: the tests' stand-in for outside services (a provider's
//! Prometheus). It records every request and can hold one unanswered, so that a test can act
//! (kill the app, say) while the app is waiting on it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

type Answer = dyn Fn(&str) -> Json + Send + Sync;

/// A running server; it serves until the test process ends.
pub struct JsonServer {
    origin: String,
    shared: Arc<Shared>,
}

struct Shared {
    answer: Box<Answer>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The target (path and query) of every request, in arrival order.
    requests: Vec<String>,
    /// The 1-based number of the request to hold until [`JsonServer::release`].
    hold: Option<usize>,
    /// The 1-based number from which every request is held until [`JsonServer::release`].
    hold_from: Option<usize>,
    released: bool,
}

impl JsonServer {
    /// Starts a server whose `answer` gets each request's target (path and query) and returns
    /// the body of a 200.
    pub fn start(answer: impl Fn(&str) -> Json + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let origin = format!("http://{}", listener.local_addr().expect("bound"));
        let shared = Arc::new(Shared {
            answer: Box::new(answer),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let serving = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let shared = serving.clone();
                // One thread per connection: a held request must not stop the others.
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        JsonServer { origin, shared }
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The targets of the requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }

    /// Holds the `nth` request (counted from 1 since the server started) without an answer
    /// until [`JsonServer::release`].
    pub fn hold(&self, nth: usize) {
        let mut state = self.shared.lock();
        state.hold = Some(nth);
        state.released = false;
    }

    /// Holds every request from the `nth` on (counted from 1 since the server started) without
    /// an answer until [`JsonServer::release`]: a Prometheus that takes as long as the test
    /// wants.
    pub fn hold_every_from(&self, nth: usize) {
        let mut state = self.shared.lock();
        state.hold_from = Some(nth);
        state.released = false;
    }

    /// Waits until `count` requests have arrived in all, polling up to `deadline`; false if they
    /// did not.
    pub fn wait_for_requests(&self, count: usize, deadline: Duration) -> bool {
        let give_up = Instant::now() + deadline;
        let mut state = self.shared.lock();
        while state.requests.len() < count {
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Waits until the held request has arrived, polling up to `deadline`; false if it did not.
    pub fn wait_until_held(&self, deadline: Duration) -> bool {
        let give_up = Instant::now() + deadline;
        let mut state = self.shared.lock();
        loop {
            if state.hold.is_some_and(|n| state.requests.len() >= n) {
                return true;
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Answers the held request (if its client is still there) and holds nothing more.
    pub fn release(&self) {
        let mut state = self.shared.lock();
        state.hold = None;
        state.hold_from = None;
        state.released = true;
        self.shared.changed.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn serve(&self, mut stream: TcpStream) {
        let mut reader = BufReader::new(&stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        // Read the headers through, so the client's request is consumed before we answer.
        let mut header = String::new();
        while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
            header.clear();
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        {
            let mut state = self.lock();
            state.requests.push(target.clone());
            let number = state.requests.len();
            self.changed.notify_all();
            let held = |s: &State| {
                (s.hold == Some(number) || s.hold_from.is_some_and(|from| number >= from))
                    && !s.released
            };
            while held(&state) {
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        let body = (self.answer)(&target).to_string();
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

/// Starts a [`JsonServer`] and returns its origin, for tests that only need the answers.
pub fn serve_json(answer: impl Fn(&str) -> Json + Send + Sync + 'static) -> String {
    JsonServer::start(answer).origin
}

/// The query parameter `name` of a request target, decoded.
pub fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A Prometheus `/api/v1/query` answer: an instant vector with one sample `value` at `time`,
/// or no sample at all.
pub fn prometheus_vector(time: i64, value: Option<&str>) -> Json {
    let result = match value {
        Some(v) => json!([{"metric": {}, "value": [time, v]}]),
        None => json!([]),
    };
    json!({"status": "success", "data": {"resultType": "vector", "result": result}})
}
