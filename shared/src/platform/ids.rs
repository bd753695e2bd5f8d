//! Opaque, prefixed identifiers (`svc-…`, `prod-…`). The hex after the prefix starts with the
//! creation time in milliseconds, so ordering by id is ordering by creation: list cursors are
//! simply the last id of a page.

use chrono::{DateTime, Utc};

pub(crate) fn new_id(prefix: &str, now: DateTime<Utc>) -> String {
    let millis = now.timestamp_millis().max(0) as u64;
    format!("{prefix}-{millis:012x}{}", hex::encode(random_bytes::<5>()))
}

/// Ids for many rows written together (a bill run's bills and ledger entries). They share one
/// random part and count up, so a batch's ids ascend and its primary-key inserts append to the
/// index instead of touching a page per row. The random part is 64 bits: batches started in the
/// same millisecond (cron events carry whole seconds; a posting per request) never collide, where
/// 16 bits collided once in a few hundred batches.
pub(crate) struct IdSequence {
    head: String,
    next: u32,
}

impl IdSequence {
    pub(crate) fn new(prefix: &str, now: DateTime<Utc>) -> Self {
        let millis = now.timestamp_millis().max(0) as u64;
        Self {
            head: format!("{prefix}-{millis:012x}{}", hex::encode(random_bytes::<8>())),
            next: 0,
        }
    }

    /// The next id: the sequence's time and random part, then a 24-bit counter.
    pub(crate) fn next_id(&mut self) -> String {
        let id = format!("{}{:06x}", self.head, self.next & 0xff_ffff);
        self.next += 1;
        id
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
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
    fn a_sequence_ascends_and_looks_like_any_id() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut seq = IdSequence::new("bill", now);
        let ids: Vec<String> = (0..300).map(|_| seq.next_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(
            ids[0].starts_with(&new_id("bill", now)[..17]),
            "the creation time leads"
        );
        assert_ne!(
            IdSequence::new("bill", now).next_id(),
            IdSequence::new("bill", now).next_id()
        );
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let a = new_id("svc", DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let b = new_id("svc", DateTime::from_timestamp(1_700_000_001, 0).unwrap());
        assert!(a.starts_with("svc-"));
        assert!(a < b);
        assert_eq!(a.len(), b.len());
    }
}
