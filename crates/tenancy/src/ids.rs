//! Prefixed, time-ordered identifiers: `ten_…`, `key_…`, `usr_…`.
//!
//! The body is 26 lowercase Crockford base32 characters: 48 bits of milliseconds
//! then 80 random bits, so ids sort by creation time and cursor pagination can
//! page by id alone.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 26;

/// A new id body: time-ordered and random.
pub fn new_id(prefix: &str) -> String {
    let ms = u128::from(crate::now_ms().max(0) as u64) & ((1 << 48) - 1);
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut value = ms << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    let mut body = [0u8; BODY_LEN];
    for (i, slot) in body.iter_mut().enumerate() {
        let shift = 5 * (BODY_LEN - 1 - i);
        *slot = ALPHABET[((value >> shift) & 31) as usize];
    }
    let mut id = String::with_capacity(prefix.len() + 1 + BODY_LEN);
    id.push_str(prefix);
    id.push('_');
    id.push_str(std::str::from_utf8(&body).unwrap_or_default());
    id
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid {kind} id")]
pub struct IdError {
    pub kind: &'static str,
}

fn valid(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| body.len() == BODY_LEN && body.bytes().all(|b| ALPHABET.contains(&b)))
}

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $kind:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(new_id($prefix))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The random body without the prefix: safe in schema and file names.
            pub fn body(&self) -> &str {
                &self.0[$prefix.len() + 1..]
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                if valid($prefix, &s) { Ok(Self(s)) } else { Err(IdError { kind: $kind }) }
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(TenantId, "ten", "tenant");
prefixed_id!(KeyId, "key", "key");
prefixed_id!(UserId, "usr", "user");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_sort_by_time() {
        let a = TenantId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = TenantId::generate();
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(a.as_str().parse::<TenantId>().as_ref(), Ok(&a));
        assert_eq!(a.body().len(), 26);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "ten_",
            "key_0123456789abcdefghjkmnpqrs",
            "ten_0123456789ABCDEFGHJKMNPQRS",
            "ten_0123456789abcdefghjkmnpqr",
            "ten_0123456789abcdefghjkmnpqrs'",
        ] {
            assert!(bad.parse::<TenantId>().is_err(), "{bad:?} accepted");
        }
        assert!("ten_0123456789abcdefghjkmnpqrs".parse::<TenantId>().is_ok());
    }
}
