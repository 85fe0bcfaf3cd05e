//! Refresh tokens: opaque random strings. Only their SHA-256 digest is stored, so a leaked
//! database does not leak usable tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A new refresh token: 256 random bits, base64url.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&os_random_u64().to_le_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The digest stored for a token.
pub fn digest(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// 64 bits from the operating system's generator (through argon2's `OsRng`), never from a
/// seeded PRNG: these bits are a bearer credential.
fn os_random_u64() -> u64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    OsRng.next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_digests_are_stable() {
        let first = generate();
        let second = generate();
        assert_ne!(first, second);
        assert_eq!(first.len(), 43);
        assert_eq!(digest(&first), digest(&first));
        assert_ne!(digest(&first), digest(&second));
    }
}
