//! Opaque, prefixed identifiers (`svc-…`, `prod-…`). The hex after the prefix starts with the
//! creation time in milliseconds, so ordering by id is ordering by creation: list cursors are
//! simply the last id of a page.

use chrono::{DateTime, Utc};

pub fn new_id(prefix: &str, now: DateTime<Utc>) -> String {
    let millis = now.timestamp_millis().max(0) as u64;
    format!("{prefix}-{millis:012x}{}", hex::encode(random_bytes::<5>()))
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // Both targets have an OS source (getrandom/WASI random_get); without one we cannot issue
    // tokens safely, so failing loudly is right.
    getrandom::fill(&mut buf).expect("the platform provides randomness");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_time() {
        let a = new_id("svc", DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let b = new_id("svc", DateTime::from_timestamp(1_700_000_001, 0).unwrap());
        assert!(a.starts_with("svc-"));
        assert!(a < b);
        assert_eq!(a.len(), b.len());
    }
}
