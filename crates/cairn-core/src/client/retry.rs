//! When to retry a request to the server, and how long to wait first.
//!
//! Pure rules, no IO and no clock of their own: callers pass `now`, the jitter and the header
//! values, so every rule is tested with plain data. [`super::connection`] applies them.
//!
//! The rules follow W&B's core:
//!
//! * Transport failures (refused, reset, timed out, DNS, a body cut short) are retried; the HTTP
//!   client decides which of its errors count as such.
//! * A status is classified by [`classify_status`]: 2xx succeed; 400, 401, 403, 404, 409, 410,
//!   413, 422 and 501 are permanent, and so is a 3xx the client did not follow; anything else
//!   (429 and 5xx above all) is retried.
//! * Retry `n` (0-based) waits [`backoff`]: `min(max_wait, min_wait · 2ⁿ)` scaled by a jitter
//!   factor in `[1, 1.25)`. A server's `Retry-After` ([`retry_after`]) replaces that wait, capped
//!   at [`MAX_SERVER_WAIT`].
//! * The draft `RateLimit-Remaining` / `RateLimit-Reset` headers hold back the connection's next
//!   request when the quota is spent ([`rate_limit_wait`]).
//! * [`next_wait`] gives up once `max_retries` retries are spent or when the wait would end past
//!   the caller's deadline.

use std::time::{Duration, Instant, SystemTime};

/// The longest wait a server may ask for through `Retry-After` or `RateLimit-Reset`; longer
/// requests are cut down to this.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(5 * 60);

/// How persistently one kind of request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; at most `max_retries + 1` attempts are made.
    pub max_retries: u32,
    /// The wait before the first retry; it doubles with each further retry.
    pub min_wait: Duration,
    /// The longest computed wait (before jitter).
    pub max_wait: Duration,
    /// How long one attempt may take, from connecting to reading the whole answer.
    pub attempt_timeout: Duration,
}

impl RetryPolicy {
    /// GraphQL calls: 20 retries, waits from 1 s to 60 s, 60 s per attempt.
    pub fn graphql() -> Self {
        Self {
            max_retries: 20,
            min_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(60),
        }
    }

    /// File stream posts: retried for about 7 days (W&B's 10085 retries at up to 60 s apart),
    /// waits from 2 s to 60 s, 180 s per attempt.
    pub fn filestream() -> Self {
        Self {
            max_retries: 10_085,
            min_wait: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(180),
        }
    }

    /// File uploads to storage: 20 retries, waits from 2 s to 60 s, 600 s per attempt.
    pub fn file_transfer() -> Self {
        Self {
            max_retries: 20,
            min_wait: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(600),
        }
    }
}

/// What an HTTP status means for the request that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx: done.
    Success,
    /// Worth another attempt (429, 5xx except 501, and unlisted codes).
    Retry,
    /// Another attempt would get the same answer: return it to the caller at once.
    Permanent,
}

/// Classifies an HTTP status code.
pub fn classify_status(status: u16) -> Class {
    match status {
        200..=299 => Class::Success,
        // The client follows redirects; one it left over (too many, or a body it will not
        // resend) will not go away by asking again.
        300..=399 => Class::Permanent,
        400 | 401 | 403 | 404 | 409 | 410 | 413 | 422 | 501 => Class::Permanent,
        _ => Class::Retry,
    }
}

/// Parses a `Retry-After` header value: delay seconds (`"120"`) or an HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, read relative to `now`).
///
/// A date in the past means "now" ([`Duration::ZERO`]); anything longer than
/// [`MAX_SERVER_WAIT`] is capped. Returns `None` for a value that is neither.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too large for u64 is still "a very long time".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_SERVER_WAIT))
}

/// How long the connection must hold back its next request, from the draft rate-limit headers
/// of the last answer (`RateLimit-Remaining`, `RateLimit-Reset`, both numbers, Reset in
/// seconds).
///
/// Only a spent quota (Remaining ≤ 0) with a usable Reset asks for a wait, capped at
/// [`MAX_SERVER_WAIT`]; otherwise `None`.
pub fn rate_limit_wait(remaining: Option<&str>, reset: Option<&str>) -> Option<Duration> {
    let remaining: f64 = remaining?.trim().parse().ok()?;
    if remaining.is_nan() || remaining > 0.0 {
        return None;
    }
    let reset: f64 = reset?.trim().parse().ok()?;
    if !reset.is_finite() || reset < 0.0 {
        return None;
    }
    let cap = MAX_SERVER_WAIT.as_secs_f64();
    Duration::try_from_secs_f64(reset.min(cap)).ok()
}

/// The computed wait before retry `retry` (0-based): `min(max_wait, min_wait · 2^retry)`,
/// scaled by `1 + 0.25 · jitter`.
///
/// `jitter` should be in `[0, 1)`; values outside are clamped (NaN counts as 0), so the result
/// always lies in `[base, 1.25 · base]`.
pub fn backoff(policy: &RetryPolicy, retry: u32, jitter: f64) -> Duration {
    let base = 1u32
        .checked_shl(retry)
        .and_then(|factor| policy.min_wait.checked_mul(factor))
        .unwrap_or(policy.max_wait)
        .min(policy.max_wait);
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 + 0.25 * jitter)).unwrap_or(base)
}

/// Why a retry loop stops without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `max_retries` retries were already made.
    Exhausted,
    /// The wait would end after the caller's deadline.
    Deadline,
}

/// Decides whether retry `retry` (0-based: the number of retries already made) happens, and
/// after which wait.
///
/// `server_wait` is the server's `Retry-After`, which replaces the computed [`backoff`] (capped
/// at [`MAX_SERVER_WAIT`]). `jitter` is as for [`backoff`].
pub fn next_wait(
    policy: &RetryPolicy,
    retry: u32,
    server_wait: Option<Duration>,
    jitter: f64,
    now: Instant,
    deadline: Option<Instant>,
) -> Result<Duration, Stop> {
    if retry >= policy.max_retries {
        return Err(Stop::Exhausted);
    }
    let wait = match server_wait {
        Some(wait) => wait.min(MAX_SERVER_WAIT),
        None => backoff(policy, retry, jitter),
    };
    if let Some(deadline) = deadline {
        match now.checked_add(wait) {
            Some(at) if at <= deadline => {}
            _ => return Err(Stop::Deadline),
        }
    }
    Ok(wait)
}

/// A tiny xorshift64* generator for retry jitter: not for anything that needs real randomness.
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// Starts a sequence; any seed works (zero is replaced, as xorshift would stay at zero).
    pub fn new(seed: u64) -> Self {
        Self {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    /// The next value, uniform enough in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        let out = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // The top 53 bits fill an f64 mantissa exactly, so the result is < 1.
        (out >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_retries: u32, min_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            min_wait: Duration::from_millis(min_ms),
            max_wait: Duration::from_millis(max_ms),
            attempt_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn classification_table() {
        let cases: &[(u16, Class)] = &[
            (200, Class::Success),
            (201, Class::Success),
            (204, Class::Success),
            (299, Class::Success),
            (301, Class::Permanent),
            (302, Class::Permanent),
            (304, Class::Permanent),
            (307, Class::Permanent),
            (308, Class::Permanent),
            (400, Class::Permanent),
            (401, Class::Permanent),
            (402, Class::Retry),
            (403, Class::Permanent),
            (404, Class::Permanent),
            (405, Class::Retry),
            (408, Class::Retry),
            (409, Class::Permanent),
            (410, Class::Permanent),
            (413, Class::Permanent),
            (422, Class::Permanent),
            (425, Class::Retry),
            (429, Class::Retry),
            (499, Class::Retry),
            (500, Class::Retry),
            (501, Class::Permanent),
            (502, Class::Retry),
            (503, Class::Retry),
            (504, Class::Retry),
            (599, Class::Retry),
            (100, Class::Retry),
            (0, Class::Retry),
            (999, Class::Retry),
        ];
        for &(status, want) in cases {
            assert_eq!(classify_status(status), want, "status {status}");
        }
    }

    #[test]
    fn policies_match_wandb() {
        let g = RetryPolicy::graphql();
        assert_eq!(
            (g.max_retries, g.min_wait.as_secs(), g.max_wait.as_secs()),
            (20, 1, 60)
        );
        assert_eq!(g.attempt_timeout.as_secs(), 60);
        let f = RetryPolicy::filestream();
        assert_eq!(
            (f.max_retries, f.min_wait.as_secs(), f.max_wait.as_secs()),
            (10_085, 2, 60)
        );
        assert_eq!(f.attempt_timeout.as_secs(), 180);
        let t = RetryPolicy::file_transfer();
        assert_eq!(
            (t.max_retries, t.min_wait.as_secs(), t.max_wait.as_secs()),
            (20, 2, 60)
        );
        assert_eq!(t.attempt_timeout.as_secs(), 600);
        // About a week of retries at the longest wait.
        let days = f.max_wait.as_secs_f64() * f64::from(f.max_retries) / 86_400.0;
        assert!((6.9..7.1).contains(&days), "{days}");
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = policy(100, 10, 1000);
        let waits: Vec<u64> = (0..10)
            .map(|n| backoff(&p, n, 0.0).as_millis() as u64)
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        // Huge retry numbers neither overflow nor panic.
        for n in [31, 32, 33, 64, u32::MAX] {
            assert_eq!(
                backoff(&p, n, 0.0),
                Duration::from_millis(1000),
                "retry {n}"
            );
        }
        // An unbounded policy saturates instead of panicking.
        let wild = RetryPolicy {
            max_wait: Duration::MAX,
            min_wait: Duration::MAX,
            ..p
        };
        assert_eq!(backoff(&wild, 5, 0.99), Duration::MAX);
        // min_wait above max_wait: max_wait wins.
        assert_eq!(
            backoff(&policy(1, 500, 100), 0, 0.0),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn backoff_jitter_stays_in_bounds() {
        let p = RetryPolicy::graphql();
        let mut jitter = Jitter::new(42);
        for n in 0..12 {
            let base = backoff(&p, n, 0.0);
            for _ in 0..200 {
                let wait = backoff(&p, n, jitter.next_f64());
                assert!(wait >= base, "retry {n}: {wait:?} < {base:?}");
                assert!(wait < base.mul_f64(1.25), "retry {n}: {wait:?} too long");
            }
        }
        let base = backoff(&p, 3, 0.0);
        assert_eq!(backoff(&p, 3, 0.5), base.mul_f64(1.125));
        // Out-of-range jitter is clamped, never a panic.
        assert_eq!(backoff(&p, 3, -7.0), base);
        assert_eq!(backoff(&p, 3, f64::NAN), base);
        assert_eq!(backoff(&p, 3, f64::INFINITY), base.mul_f64(1.25));
    }

    #[test]
    fn jitter_is_deterministic_and_in_range() {
        let a: Vec<f64> = {
            let mut j = Jitter::new(7);
            (0..5).map(|_| j.next_f64()).collect()
        };
        let b: Vec<f64> = {
            let mut j = Jitter::new(7);
            (0..5).map(|_| j.next_f64()).collect()
        };
        assert_eq!(a, b);
        let mut j = Jitter::new(0);
        let values: Vec<f64> = (0..10_000).map(|_| j.next_f64()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
    }

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("1", Some(1)),
            (" 120 ", Some(120)),
            ("300", Some(300)),
            ("301", Some(300)),
            ("99999999999999999999999", Some(300)),
            ("", None),
            ("-1", None),
            ("1.5", None),
            ("soon", None),
            ("12abc", None),
        ];
        for &(value, want) in cases {
            let got = retry_after(value, now).map(|d| d.as_secs());
            assert_eq!(got, want, "{value:?}");
        }
    }

    #[test]
    fn retry_after_http_date() {
        let at = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let check = |value: &str, now: SystemTime, want: Option<Duration>| {
            assert_eq!(retry_after(value, now), want, "{value:?}");
        };
        // IMF-fixdate, and the two obsolete forms RFC 7231 still accepts.
        let now = at - Duration::from_secs(30);
        check(
            "Wed, 21 Oct 2015 07:28:00 GMT",
            now,
            Some(Duration::from_secs(30)),
        );
        check(
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            now,
            Some(Duration::from_secs(30)),
        );
        check(
            "Wed Oct 21 07:28:00 2015",
            now,
            Some(Duration::from_secs(30)),
        );
        // In the past: retry now.
        check(
            "Wed, 21 Oct 2015 07:28:00 GMT",
            at + Duration::from_secs(5),
            Some(Duration::ZERO),
        );
        // Far future: capped.
        check(
            "Wed, 21 Oct 2015 07:28:00 GMT",
            at - Duration::from_secs(86_400),
            Some(MAX_SERVER_WAIT),
        );
        check("Wed, 32 Oct 2015 07:28:00 GMT", now, None);
        check("Oct 21 2015", now, None);
    }

    #[test]
    fn rate_limit_headers() {
        let cases: &[(Option<&str>, Option<&str>, Option<Duration>)] = &[
            (Some("0"), Some("3"), Some(Duration::from_secs(3))),
            (Some(" 0 "), Some("0.5"), Some(Duration::from_millis(500))),
            (Some("0.0"), Some("2"), Some(Duration::from_secs(2))),
            (Some("-1"), Some("2"), Some(Duration::from_secs(2))),
            (Some("0"), Some("100000"), Some(MAX_SERVER_WAIT)),
            (Some("0"), Some("0"), Some(Duration::ZERO)),
            (Some("0"), Some("-0"), Some(Duration::ZERO)),
            (Some("-0"), Some("1"), Some(Duration::from_secs(1))),
            (Some("1"), Some("3"), None),
            (Some("17"), Some("3"), None),
            (Some("0"), None, None),
            (Some("0"), Some("-3"), None),
            (Some("0"), Some("NaN"), None),
            (Some("0"), Some("inf"), None),
            (Some("0"), Some("later"), None),
            (None, Some("3"), None),
            (Some("NaN"), Some("3"), None),
            (Some("none"), Some("3"), None),
        ];
        for &(remaining, reset, want) in cases {
            assert_eq!(
                rate_limit_wait(remaining, reset),
                want,
                "{remaining:?} {reset:?}"
            );
        }
    }

    #[test]
    fn next_wait_gives_up_after_max_retries() {
        let p = policy(3, 10, 1000);
        let now = Instant::now();
        assert_eq!(
            next_wait(&p, 0, None, 0.0, now, None),
            Ok(Duration::from_millis(10))
        );
        assert_eq!(
            next_wait(&p, 2, None, 0.0, now, None),
            Ok(Duration::from_millis(40))
        );
        assert_eq!(next_wait(&p, 3, None, 0.0, now, None), Err(Stop::Exhausted));
        assert_eq!(
            next_wait(&policy(0, 10, 10), 0, None, 0.0, now, None),
            Err(Stop::Exhausted)
        );
    }

    #[test]
    fn next_wait_prefers_the_server_wait_capped() {
        let p = policy(3, 10, 1000);
        let now = Instant::now();
        let server = Some(Duration::from_secs(2));
        assert_eq!(
            next_wait(&p, 0, server, 0.9, now, None),
            Ok(Duration::from_secs(2))
        );
        let zero = Some(Duration::ZERO);
        assert_eq!(next_wait(&p, 0, zero, 0.9, now, None), Ok(Duration::ZERO));
        let huge = Some(Duration::from_secs(86_400));
        assert_eq!(next_wait(&p, 0, huge, 0.0, now, None), Ok(MAX_SERVER_WAIT));
        // The server wait does not lift the retry limit.
        assert_eq!(
            next_wait(&p, 3, server, 0.0, now, None),
            Err(Stop::Exhausted)
        );
    }

    #[test]
    fn next_wait_respects_the_deadline() {
        let p = policy(10, 100, 1000);
        let now = Instant::now();
        let soon = Some(now + Duration::from_millis(150));
        assert_eq!(
            next_wait(&p, 0, None, 0.0, now, soon),
            Ok(Duration::from_millis(100))
        );
        // Exactly at the deadline is still allowed.
        let exact = Some(now + Duration::from_millis(100));
        assert_eq!(
            next_wait(&p, 0, None, 0.0, now, exact),
            Ok(Duration::from_millis(100))
        );
        assert_eq!(next_wait(&p, 1, None, 0.0, now, soon), Err(Stop::Deadline));
        let server = Some(Duration::from_secs(1));
        assert_eq!(
            next_wait(&p, 0, server, 0.0, now, soon),
            Err(Stop::Deadline)
        );
        // A deadline already passed stops even a zero wait.
        let past = Some(now);
        let later = now + Duration::from_millis(1);
        assert_eq!(
            next_wait(&p, 0, Some(Duration::ZERO), 0.0, later, past),
            Err(Stop::Deadline)
        );
    }
}
