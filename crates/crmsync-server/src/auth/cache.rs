//! A short-lived cache of successful secret verifications (Basic passwords, application
//! secrets), so a client presenting the same credentials again does not pay an argon2 hash.
//!
//! Entries are keyed by a salted SHA-256 of everything that was checked (kind, org, login,
//! secret), so the cache never holds a secret and an entry of one org or kind never answers
//! for another. A failed verification is never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Beyond this many entries the cache starts over rather than growing.
const MAX_ENTRIES: usize = 10_000;

pub(crate) struct VerifiedCache<T> {
    salt: [u8; 16],
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (T, Instant)>>,
}

impl<T: Clone> VerifiedCache<T> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            salt: rand::random(),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key of a verification: `parts` joined unambiguously, salted, hashed.
    pub(crate) fn key(&self, parts: &[&str]) -> [u8; 32] {
        let mut hasher = Sha256::new().chain_update(self.salt);
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().into()
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<T> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(value, _)| value.clone())
    }

    pub(crate) fn insert(&self, key: [u8; 32], value: T) {
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_answer_only_their_exact_key_until_they_expire() {
        let cache = VerifiedCache::new(Duration::from_secs(60));
        let key = cache.key(&["user", "acme", "a@b.example", "secret"]);
        cache.insert(key, 1);
        assert_eq!(cache.get(&key), Some(1));
        // Moving a byte between parts changes the key.
        assert_eq!(
            cache.get(&cache.key(&["user", "acme", "a@b.examples", "ecret"])),
            None
        );
        assert_eq!(
            cache.get(&cache.key(&["app", "acme", "a@b.example", "secret"])),
            None
        );
        let expired = VerifiedCache::new(Duration::ZERO);
        let key = expired.key(&["x"]);
        expired.insert(key, 1);
        assert_eq!(expired.get(&key), None);
    }
}
