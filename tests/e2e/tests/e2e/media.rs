//! Large bodies under Spin (docs/RULES.md R1.0, R4.18): an upload is refused before its body is
//! read when its sender may not upload it, and a 100 MiB video is stored in pieces and streamed
//! out, so serving it to four clients at once holds far less than one copy of it in memory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use testkit::{Market, mp4};

use crate::harness::{Manifest, Spin, SpinUp};

/// The largest video a listing takes (100 MiB).
const VIDEO_MAX: usize = 104_857_600;

/// Sends the head of a request announcing a body of `length` bytes (or no body, and no
/// `Content-Length`), and none of the body: the status the app answers without it (`None` if
/// none came within 30 s: it waited for the body).
fn answer_without_body(app: &Spin, head: &str, length: Option<usize>) -> Option<u16> {
    let address = app.origin().trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("a connection");
    let length = length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
    write!(
        stream,
        "{head}\r\nHost: {address}\r\n{length}Connection: close\r\n\r\n"
    )
    .expect("the head sent");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).ok()?;
    let status = String::from_utf8_lossy(&answer[..n]);
    status.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn an_upload_is_refused_before_its_body_is_read_unless_its_sender_may_upload() {
    let app = SpinUp::new(Manifest::repo().without_cron()).start();
    let market = app.market();
    let (provider, _, product) = market.draft_product();
    let (_, customer) = market.customer("individual");
    let slot = format!("/api/v1/products/{product}/media/video");
    let put = format!("PUT {slot} HTTP/1.1");
    assert_eq!(answer_without_body(&app, &put, Some(VIDEO_MAX)), Some(401));
    let as_customer = format!("{put}\r\nAuthorization: Bearer {customer}");
    assert_eq!(
        answer_without_body(&app, &as_customer, Some(VIDEO_MAX)),
        Some(403)
    );
    let post = format!("POST {slot} HTTP/1.1\r\nAuthorization: Bearer {provider}");
    assert_eq!(answer_without_body(&app, &post, Some(VIDEO_MAX)), Some(405));
    // The console's upload form, from a browser that is not signed in: sent to sign in.
    let console = format!(
        "POST /products/{product}/media HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b"
    );
    assert_eq!(
        answer_without_body(&app, &console, Some(VIDEO_MAX)),
        Some(303)
    );
    // The provider's upload is read, and stored; a GET (which has no body) is served.
    market
        .put_bytes(&slot, &provider, "video/mp4", mp4(1024))
        .expect(200);
    let get = format!("GET {slot} HTTP/1.1\r\nAuthorization: Bearer {provider}");
    assert_eq!(answer_without_body(&app, &get, None), Some(200));
}

#[test]
fn four_clients_download_a_100_mib_video_at_once_in_bounded_memory() {
    let state = tempfile::tempdir().expect("a state directory");
    let video = mp4(VIDEO_MAX);
    let (provider, slot) = {
        let app = SpinUp::new(Manifest::repo().without_cron())
            .state_dir(state.path())
            .start();
        let market = app.market();
        let (provider, _, product) = market.draft_product();
        let slot = format!("/api/v1/products/{product}/media/video");
        market
            .put_bytes(&slot, &provider, "video/mp4", video.clone())
            .expect(200);
        (provider, slot)
    };
    // A fresh host of the same state: its peak is what serving takes, not the upload.
    let app = SpinUp::new(Manifest::repo().without_cron())
        .state_dir(state.path())
        .start();
    let market = app.market();
    market
        .get(&slot.replace("/video", ""), &provider)
        .expect(200);
    let (before, _) = app.memory();
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let client = market.on_real_clock();
                let (slot, provider, video) = (&slot, &provider, &video);
                s.spawn(move || {
                    let got = client.get(slot, provider).expect(200);
                    assert_eq!(got.header("content-type"), Some("video/mp4"));
                    assert_eq!(
                        got.header("content-security-policy"),
                        Some("sandbox; default-src 'none'")
                    );
                    assert!(got.body == *video, "the whole video, byte for byte");
                })
            })
            .collect();
        for client in clients {
            client.join().expect("a client");
        }
    });
    let (_, peak) = app.memory();
    let grown = peak.saturating_sub(before);
    assert!(
        grown < VIDEO_MAX as u64,
        "serving four downloads grew the app by {} MiB (from {} MiB): it held the video whole",
        grown / 1_048_576,
        before / 1_048_576
    );
    eprintln!(
        "four 100 MiB downloads at once: the app grew from {} MiB to a peak of {} MiB",
        before / 1_048_576,
        peak / 1_048_576
    );
}
