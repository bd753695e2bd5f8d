//! The signature of a delivery: `Nestmarket-Signature: t=<unix seconds>,v1=<hex>`, where the hex
//! is HMAC-SHA256 (RFC 2104) keyed with the endpoint's secret over `"<t>.<body>"`. A receiver
//! recomputes it over the exact bytes it received and compares; `t` lets it refuse old replays.

use sha2::{Digest, Sha256};

/// The header a delivery carries its signature in.
pub(crate) const HEADER: &str = "Nestmarket-Signature";

/// SHA-256's block size in bytes: the HMAC key is padded (or hashed) to it.
const BLOCK: usize = 64;

/// HMAC-SHA256 of `message` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The header's value for `body` sent at `t` (Unix seconds) under `secret`.
pub(crate) fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "t={t},v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &signed))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231's test cases 1, 2 and 6 (a key longer than a block).
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, message, expected) in cases {
            assert_eq!(hex::encode(hmac_sha256(key, message)), expected);
        }
    }

    #[test]
    fn the_signature_covers_the_time_and_the_body() {
        let s = signature("whsec_x", 1_700_000_000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_ne!(s, signature("whsec_x", 1_700_000_001, b"{}"));
        assert_ne!(s, signature("whsec_x", 1_700_000_000, b"{ }"));
        assert_ne!(s, signature("whsec_y", 1_700_000_000, b"{}"));
    }
}
