//! A webhook receiver on loopback: the tests' stand-in for a provider's or customer's endpoint.
//! It records every delivery (headers and body), answers each with the status the test chose
//! for it, and checks signatures with an HMAC of its own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::Value as Json;

type Status = dyn Fn(usize) -> u16 + Send + Sync;

/// Every event type: what a provider's (or an operator's) endpoint may take.
pub const PROVIDER_EVENTS: [&str; 10] = [
    "order.created",
    "instance.released",
    "instance.suspended",
    "bill.issued",
    "credit_note.issued",
    "review.decided",
    "product.published",
    "product.delisted",
    "settlement.closed",
    "settlement.paid",
];

/// What a customer's endpoint may take: its own orders, instances, bills and credit notes.
pub const CUSTOMER_EVENTS: [&str; 5] = [
    "order.created",
    "instance.released",
    "instance.suspended",
    "bill.issued",
    "credit_note.issued",
];

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub answered: u16,
}

impl Delivery {
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).expect("a JSON delivery")
    }

    /// Whether `Nestmarket-Signature` is `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` under
    /// `secret`.
    pub fn signed_with(&self, secret: &str) -> bool {
        let Some(header) = self.headers.get("nestmarket-signature") else {
            return false;
        };
        let parts: HashMap<&str, &str> = header
            .split(',')
            .filter_map(|p| p.split_once('='))
            .collect();
        let (Some(t), Some(v1)) = (parts.get("t"), parts.get("v1")) else {
            return false;
        };
        let Ok(expected) = hex::decode(v1) else {
            return false;
        };
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        mac.verify_slice(&expected).is_ok()
    }
}

/// A running receiver; it serves until the test process ends.
pub struct WebhookReceiver {
    url: String,
    shared: Arc<Shared>,
}

struct Shared {
    status: Box<Status>,
    deliveries: Mutex<Vec<Delivery>>,
    arrived: Condvar,
}

impl WebhookReceiver {
    /// A receiver answering every delivery 204.
    pub fn start() -> Self {
        Self::answering(|_| 204)
    }

    /// A receiver answering the `n`-th delivery (from 1) with `status(n)`.
    pub fn answering(status: impl Fn(usize) -> u16 + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}/hooks", listener.local_addr().expect("bound"));
        let shared = Arc::new(Shared {
            status: Box::new(status),
            deliveries: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
        });
        let serving = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let shared = serving.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        WebhookReceiver { url, shared }
    }

    /// `http://127.0.0.1:PORT/hooks`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> &str {
        self.url.trim_end_matches("/hooks")
    }

    /// Every delivery so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().clone()
    }

    /// Waits until `count` deliveries have arrived, up to `deadline`; every one so far.
    pub fn wait_for(&self, count: usize, deadline: Duration) -> Vec<Delivery> {
        let give_up = Instant::now() + deadline;
        let mut got = self.shared.lock();
        while got.len() < count {
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            got = self
                .shared
                .arrived
                .wait_timeout(got, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        got.clone()
    }

    /// The deliveries of events of `kind` (`"bill.issued"`) so far.
    pub fn of_type(&self, kind: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.json()["type"] == kind)
            .collect()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Delivery>> {
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn serve(&self, mut stream: TcpStream) {
        let mut reader = BufReader::new(&stream);
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).map_or(true, |n| n <= 2) {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answered = {
            let mut got = self.lock();
            let answered = (self.status)(got.len() + 1);
            got.push(Delivery {
                headers,
                body,
                answered,
            });
            self.arrived.notify_all();
            answered
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {answered} Answered\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
}
