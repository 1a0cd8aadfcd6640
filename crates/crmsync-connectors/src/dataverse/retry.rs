//! When to try a request again, and how long to wait first.
//!
//! Retryable failures (network errors, 5xx, 429; see `SyncError::is_retryable`) are retried
//! up to `max_retries` times. The wait before retry `n` (0-based) is "full jitter": a uniform
//! random share of `min(cap, base * 2^n)`, so many clients hitting the same server spread out.
//! A `Retry-After` header (429 and 503, seconds or an HTTP date) replaces the backoff, capped
//! at [`RetryPolicy::max_retry_after`] so one answer cannot stall a sync for hours.
//!
//! Everything here is pure: the jitter is an argument, so the schedule is unit tested.

use std::time::{Duration, SystemTime};

/// The retry schedule of a connector.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Ceiling of the first backoff.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
    /// Largest wait honoured from a `Retry-After` header.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }

    /// `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry `attempt` (0-based): the server's `retry_after` (capped) if it
    /// gave one, else `jitter` (in `[0, 1)`) of the backoff ceiling.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_retry_after),
            None => self.ceiling(attempt).mul_f64(jitter.clamp(0.0, 1.0)),
        }
    }
}

/// Reads a `Retry-After` value: delay seconds or an HTTP date (relative to `now`; a date in
/// the past means no wait).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let p = RetryPolicy::new(10);
        let ceilings: Vec<u64> = (0..8).map(|n| p.ceiling(n).as_millis() as u64).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(p.ceiling(u32::MAX), p.cap);
        assert_eq!(p.delay(3, None, 0.0), Duration::ZERO);
        assert_eq!(p.delay(3, None, 0.5), Duration::from_secs(2));
        assert!(p.delay(3, None, 0.999) < p.ceiling(3));
        assert_eq!(p.delay(30, None, 2.0), p.cap, "jitter is clamped");
    }

    #[test]
    fn retry_after_replaces_backoff_and_is_capped() {
        let p = RetryPolicy::new(3);
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(7)), 0.9),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(100_000)), 0.1),
            p.max_retry_after
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21T07:28:00Z
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 1 ", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
