//! What crosses the wire, seen from a raw TCP client: a body over its endpoint's limit is refused
//! before it is read whole, and a keep-alive client gets every response whole, head and body
//! together, without waiting on a delayed ACK.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use testkit::Market;

use crate::harness::shared_app;

/// A body far over any endpoint's limit.
const HUGE: usize = 64 * 1024 * 1024;

/// How long a read may wait before the test fails: the refusal needs no more of the body, so a
/// server that waited for all 64 MiB would never answer.
const READ_DEADLINE: Duration = Duration::from_secs(60);

fn connect(origin: &str) -> TcpStream {
    let stream = TcpStream::connect(origin.trim_start_matches("http://")).expect("a connection");
    stream
        .set_read_timeout(Some(READ_DEADLINE))
        .expect("a read deadline");
    stream
}

/// Reads one response: its status line and headers, then its body by `content-length`.
fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        let n = stream
            .read(&mut buf)
            .expect("a response before the deadline");
        assert!(n > 0, "the connection closed without a response");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let length = content_length(&head);
    while raw.len() < head_end + length {
        let n = stream.read(&mut buf).expect("the body before the deadline");
        assert!(n > 0, "the connection closed mid-body");
        raw.extend_from_slice(&buf[..n]);
    }
    (head, raw[head_end..head_end + length].to_vec())
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no content-length in {head}"))
}

fn status(head: &str) -> u16 {
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line")
}

#[test]
fn a_body_over_its_limit_is_refused_before_it_is_read_whole() {
    let app = shared_app();
    // Declared too large: refused from the headers, before a byte of the body is sent.
    let mut declared = connect(app.origin());
    write!(
        declared,
        "POST /api/v1/metering HTTP/1.1\r\nHost: nestmarket\r\nContent-Type: application/json\r\n\
         Content-Length: {HUGE}\r\n\r\n"
    )
    .expect("the request head");
    let (head, body) = read_response(&mut declared);
    assert_eq!(status(&head), 413, "{head}");
    let problem: serde_json::Value = serde_json::from_slice(&body).expect("a problem document");
    assert_eq!(problem["code"], "PayloadTooLarge");

    // Undeclared (chunked): the server stops reading past the limit and answers, though only a
    // little more than the limit of the 64 MiB was ever sent. A body that may be larger than a
    // JSON body (a file) is read only from a provider: without a token it is 401 at once.
    let (_, provider) = app.provider();
    let authorized = format!("Authorization: Bearer {provider}\r\n");
    for (target, authorization, refused) in [
        ("/api/v1/metering", "", 413),
        (
            "/api/v1/products/prod-x/media/logo",
            authorized.as_str(),
            413,
        ),
        ("/api/v1/products/prod-x/media/logo", "", 401),
    ] {
        let mut chunked = connect(app.origin());
        write!(
            chunked,
            "PUT {target} HTTP/1.1\r\nHost: nestmarket\r\n{authorization}\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .expect("the request head");
        // Sends until the server stops taking the body (it answers and closes) or as much as
        // the largest limit (a logo's 7.5 MiB) and a little more, a fraction of the 64 MiB.
        let chunk = vec![b'x'; 65536];
        let mut sent = 0;
        while sent < 8 * 1024 * 1024 {
            let piece = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if chunked.write_all(&piece).is_err() {
                break;
            }
            sent += chunk.len();
        }
        let (head, _) = read_response(&mut chunked);
        assert_eq!(status(&head), refused, "{target}: {head}");
        assert!(sent < HUGE);
    }
}

#[test]
fn a_keep_alive_client_gets_each_response_whole_in_one_read() {
    let app = shared_app();
    let mut stream = connect(app.origin());
    for (i, request) in [
        "GET /api/v1/catalog/categories HTTP/1.1\r\nHost: nestmarket\r\n\r\n",
        "GET /api/v1/me HTTP/1.1\r\nHost: nestmarket\r\n\r\n",
        "GET /api/v1/catalog HTTP/1.1\r\nHost: nestmarket\r\n\r\n",
    ]
    .iter()
    .cycle()
    .take(30)
    .enumerate()
    {
        stream.write_all(request.as_bytes()).expect("a request");
        // One read: with the head sent alone, the body would follow only after the client's
        // delayed ACK, and this read would return the head without it.
        let mut buf = vec![0u8; 65536];
        let n = stream
            .read(&mut buf)
            .expect("a response before the deadline");
        let raw = &buf[..n];
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .unwrap_or_else(|| panic!("request {i}: the head came in pieces"));
        let head = String::from_utf8_lossy(&raw[..head_end]);
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{head}"
        );
        assert_eq!(
            n - head_end,
            content_length(&head),
            "request {i}: the body did not come with its head: {head}"
        );
    }
}

/// A push as large as a body may be (1 MiB: one record, tens of thousands of entities) is
/// refused from its size alone, outside the database's write lock, while an order placed at the
/// same moment goes through.
#[test]
fn a_huge_push_is_refused_while_a_concurrent_order_succeeds() {
    use testkit::{Market, at};
    let app = shared_app();
    let market = app.at(at("2026-03-27T08:00:00Z"));
    let (provider, _, product) = market.published_product();
    let (_, customer) = market.funded_customer("100.00");
    let instance = market.order(&customer, &product);
    market.set_now(at("2026-03-27T08:40:00Z"));
    let entity = serde_json::json!({"Key": "Frequency", "Value": "1"}).to_string();
    let count = (1_000_000 - 200) / (entity.len() + 1);
    let entities = vec![entity; count].join(",");
    let huge = format!(
        r#"{{"ServiceInstanceId":"{instance}","Metering":[{{"StartTime":{},"EndTime":{},"Entities":[{entities}]}}]}}"#,
        testkit::unix("2026-03-27T08:00:00Z"),
        testkit::unix("2026-03-27T08:30:00Z"),
    );
    assert!(huge.len() <= 1_048_576, "{} bytes", huge.len());
    let (pushed, ordered) = std::thread::scope(|s| {
        let push = s.spawn(|| {
            market.call(
                "POST",
                "/api/v1/metering",
                Some(&provider),
                Some("application/json"),
                huge.into_bytes(),
            )
        });
        let order = s.spawn(|| {
            let body = serde_json::json!({"product_id": product, "region": "cn-hangzhou",
                                          "accept_eula": true});
            market.post("/api/v1/orders", &customer, body)
        });
        (push.join().unwrap(), order.join().unwrap())
    });
    pushed.problem(400, "TooMany");
    ordered.expect(201);
}
