//! The `Idempotency-Key` a client sends, built valid.

use crate::error::{ApiError, ApiResult, Code, FieldError};

/// The longest key accepted: room for a UUID with a prefix, and then some.
const MAX_LEN: usize = 255;

/// 1 to 255 visible ASCII characters, as the client chose them (a UUID, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyKey(String);

impl IdempotencyKey {
    pub(crate) fn parse(value: &[u8]) -> ApiResult<Self> {
        let valid = !value.is_empty()
            && value.len() <= MAX_LEN
            && value.iter().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(ApiError::validation(vec![FieldError::new(
                "Idempotency-Key",
                Code::InvalidValue,
                format!("1 to {MAX_LEN} visible ASCII characters"),
            )]));
        }
        Ok(Self(String::from_utf8_lossy(value).into_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse(b"3f0c9a1e-2b7d-4e0a-9c1e-0a9f7b2c4d5e").is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        for bad in [&b""[..], &[b'k'; 256], b"with space", "clé".as_bytes()] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
