//! The request cache behind the streaming URLs, with kubelet's rules: each
//! Exec/Attach/PortForward request is stored under a random URL-safe token
//! (16 bytes from the OS RNG, base64url without padding), a token can be used
//! once (it is removed at its first lookup), it expires one minute after it
//! was issued, and at most 1000 tokens are in flight (expired ones are
//! collected first). The clock is injected so tests can move time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// kubelet's token lifetime.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// kubelet's cap on tokens in flight.
pub const MAX_IN_FLIGHT: usize = 1000;
/// Random bytes per token (22 base64url characters).
const TOKEN_BYTES: usize = 16;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a request could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// the cache is full of live tokens
    #[error("maximum number of in-flight requests exceeded ({0})")]
    TooManyInFlight(usize),
    /// the OS RNG failed
    #[error("generating a streaming token: {0}")]
    Random(String),
}

struct Entry<T> {
    request: T,
    expires: Instant,
}

struct Inner<T> {
    entries: HashMap<String, Entry<T>>,
    /// Tokens in issue order, for collecting the expired ones; may hold
    /// tokens already consumed (skipped when met).
    order: VecDeque<(Instant, String)>,
}

/// Single-use, expiring tokens for stored requests.
pub struct TokenCache<T> {
    clock: Arc<dyn Clock>,
    ttl: Duration,
    max_in_flight: usize,
    inner: Mutex<Inner<T>>,
}

impl<T> TokenCache<T> {
    /// A cache with kubelet's limits.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_limits(clock, TOKEN_TTL, MAX_IN_FLIGHT)
    }

    /// A cache with other limits.
    pub fn with_limits(clock: Arc<dyn Clock>, ttl: Duration, max_in_flight: usize) -> Self {
        Self {
            clock,
            ttl,
            max_in_flight,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `request` and returns its token.
    pub fn insert(&self, request: T) -> Result<String, TokenError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.collect(now);
        if inner.entries.len() >= self.max_in_flight {
            return Err(TokenError::TooManyInFlight(self.max_in_flight));
        }
        let token = loop {
            let token = random_token()?;
            // 128 random bits do not collide in practice; stay correct anyway.
            if !inner.entries.contains_key(&token) {
                break token;
            }
        };
        let expires = now + self.ttl;
        inner.order.push_back((expires, token.clone()));
        inner
            .entries
            .insert(token.clone(), Entry { request, expires });
        Ok(token)
    }

    /// Takes the request stored under `token`: `None` if the token is
    /// unknown, already used, or expired.
    pub fn consume(&self, token: &str) -> Option<T> {
        let now = self.clock.now();
        let entry = self.lock().entries.remove(token)?;
        (now < entry.expires).then_some(entry.request)
    }

    /// Live tokens (expired ones not yet collected count too).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no token is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Inner<T> {
    fn collect(&mut self, now: Instant) {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            if let Some((_, token)) = self.order.pop_front() {
                self.entries.remove(&token);
            }
        }
        // Consumed tokens linger in `order` until they would have expired;
        // bound that too, so a busy server's queue stays small.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|(_, t)| entries.contains_key(t));
        }
    }
}

fn random_token() -> Result<String, TokenError> {
    let mut raw = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (ManualClock, TokenCache<u32>) {
        let clock = ManualClock::default();
        (clock.clone(), TokenCache::new(Arc::new(clock)))
    }

    #[test]
    fn tokens_are_url_safe_and_single_use() {
        let (_, c) = cache();
        let t = c.insert(7).unwrap();
        assert_eq!(t.len(), 22);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(c.insert(8).unwrap(), t);
        assert_eq!(c.consume(&t), Some(7));
        assert_eq!(c.consume(&t), None);
        assert_eq!(c.consume("nosuch"), None);
    }

    #[test]
    fn tokens_expire_after_a_minute() {
        let (clock, c) = cache();
        let early = c.insert(1).unwrap();
        let kept = c.insert(2).unwrap();
        clock.advance(Duration::from_secs(59));
        let late = c.insert(3).unwrap();
        assert_eq!(c.consume(&early), Some(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(c.consume(&kept), None, "expired at exactly one minute");
        assert_eq!(c.consume(&late), Some(3));
    }

    #[test]
    fn at_most_1000_in_flight_and_expired_ones_make_room() {
        let (clock, c) = cache();
        let tokens: Vec<_> = (0..MAX_IN_FLIGHT as u32)
            .map(|i| c.insert(i).unwrap())
            .collect();
        assert_eq!(c.insert(1000), Err(TokenError::TooManyInFlight(1000)));
        // A consumed token frees its place.
        assert_eq!(c.consume(&tokens[10]), Some(10));
        c.insert(1001).unwrap();
        assert!(c.insert(1002).is_err());
        clock.advance(TOKEN_TTL);
        c.insert(1003).unwrap();
        assert_eq!(c.len(), 1);
    }
}
