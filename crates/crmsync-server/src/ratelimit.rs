//! A per-client-address rate limit over a sliding window, for registration (the public
//! Connect page) and the admin UI's sign-in form. In memory: each instance counts its own clients, which is what a limit
//! against one abusive address needs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many attempts one address may make per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub attempts: usize,
    pub window: Duration,
}

/// Addresses tracked before the oldest windows are dropped, so memory stays bounded.
const MAX_ADDRESSES: usize = 100_000;

pub struct RateLimiter {
    limit: RateLimit,
    seen: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records an attempt from `addr` at `now`; `Err(wait)` when the address is over its limit,
    /// with how long until its oldest attempt leaves the window. Refused attempts do not count.
    pub fn attempt(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().expect("rate limiter lock");
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(&addr) {
            let window = self.limit.window;
            seen.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < window));
        }
        let times = seen.entry(addr).or_default();
        times.retain(|t| now.duration_since(*t) < self.limit.window);
        if times.len() >= self.limit.attempts {
            let oldest = times.first().copied().unwrap_or(now);
            return Err(self.limit.window.saturating_sub(now.duration_since(oldest)));
        }
        times.push(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_limit_waits_for_the_window_while_others_go_on() {
        let limiter = RateLimiter::new(RateLimit {
            attempts: 2,
            window: Duration::from_secs(60),
        });
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        assert!(limiter.attempt(a, t0).is_ok());
        assert!(limiter.attempt(a, t0 + Duration::from_secs(10)).is_ok());
        assert_eq!(
            limiter.attempt(a, t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert!(limiter.attempt(b, t0 + Duration::from_secs(20)).is_ok());
        assert!(limiter.attempt(a, t0 + Duration::from_secs(61)).is_ok());
    }
}
