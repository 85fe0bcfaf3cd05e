//! Password hashing with argon2id, in PHC string format (parameters travel with the hash, so
//! raising the cost later still verifies old hashes).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// argon2id with the configured costs; hashing is CPU- and memory-bound, so callers run it on
/// a blocking thread.
#[derive(Debug, Clone, Copy)]
pub struct PasswordHashing {
    memory_kib: u32,
    iterations: u32,
}

impl PasswordHashing {
    pub fn new(memory_kib: u32, iterations: u32) -> Self {
        Self {
            memory_kib,
            iterations,
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        let params = Params::new(self.memory_kib, self.iterations, 1, None)
            .expect("configuration validation checked the argon2 parameters");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    pub fn hash(&self, password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 hashes any password")
            .to_string()
    }

    /// Whether `password` matches `stored`; a malformed stored hash never matches.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        match PasswordHash::new(stored) {
            Ok(parsed) => self
                .argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify_only_the_right_password() {
        let hashing = PasswordHashing::new(8 * 1024, 1);
        let first = hashing.hash("correct horse battery staple");
        let second = hashing.hash("correct horse battery staple");
        assert!(first.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        assert_ne!(first, second, "each hash has its own salt");
        assert!(hashing.verify("correct horse battery staple", &first));
        assert!(!hashing.verify("correct horse battery stapler", &first));
        assert!(!hashing.verify("anything", "not a phc string"));
    }
}
