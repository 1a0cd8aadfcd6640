//! Password hashing with argon2id (PHC strings), shared by every backend.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};

use crate::{StoreError, StoreResult};

/// Minimum length of a user password.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Hashes a user password after checking the length policy.
pub fn hash(password: &str) -> StoreResult<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(StoreError::BadRequest(format!(
            "password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    hash_secret(password)
}

/// Hashes a secret the server generated itself (an application secret): no policy applies,
/// its strength comes from its randomness.
pub fn hash_secret(secret: &str) -> StoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::database(format!("password hashing failed: {e}")))
}

/// Constant-time check of `password` against a stored PHC hash; false for malformed hashes.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong horse!", &h));
        assert!(!super::verify("correct horse", "not-a-hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(super::hash("short").is_err());
    }
}
