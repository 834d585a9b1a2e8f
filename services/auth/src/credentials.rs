//! Secrets handed to people: generation, keyed digests, constant-time comparison.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const KEY_PREFIX: &str = "anno_live_";
pub const ADMIN_PREFIX: &str = "anno_admin_";
/// How much of a key is shown to recognise it: the prefix and 8 characters.
const SHOWN: usize = 8;

/// A new secret: 256 random bits, base62, after a readable prefix.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", base62(&bytes))
}

fn base62(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // Big-endian base conversion; 32 bytes give 43 characters.
    let mut digits: Vec<u8> = Vec::with_capacity(44);
    let mut number = bytes.to_vec();
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            remainder = acc % 62;
        }
        digits.push(ALPHABET[remainder as usize]);
    }
    while digits.len() < 43 {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// The part of a key shown in listings.
pub fn shown_prefix(key: &str, prefix: &str) -> String {
    key.chars().take(prefix.len() + SHOWN).collect()
}

/// HMAC-SHA-256 of the secret under the server pepper, hex.
pub fn digest(pepper: &str, secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(pepper.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(secret.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn digests_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Does this look like one of our keys? Cheap shape check before any lookup.
pub fn looks_like(secret: &str, prefix: &str) -> bool {
    secret.len() == prefix.len() + 43
        && secret.starts_with(prefix)
        && secret[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_digested_with_the_pepper() {
        let a = generate(KEY_PREFIX);
        let b = generate(KEY_PREFIX);
        assert_ne!(a, b);
        assert!(looks_like(&a, KEY_PREFIX), "{a}");
        assert_eq!(shown_prefix(&a, KEY_PREFIX).len(), KEY_PREFIX.len() + 8);
        assert_eq!(digest("pepper", &a), digest("pepper", &a));
        assert_ne!(digest("pepper", &a), digest("other pepper", &a));
        assert!(digests_match(&digest("p", &a), &digest("p", &a)));
        assert!(!digests_match(&digest("p", &a), &digest("p", &b)));
    }

    #[test]
    fn base62_keeps_all_the_entropy() {
        assert_eq!(base62(&[0u8; 32]), "0".repeat(43));
        assert_eq!(base62(&[0xff; 32]).len(), 43);
    }
}
