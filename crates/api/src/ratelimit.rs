//! Per-client request rate limit: a token bucket per client IP address.
//!
//! Each client may make [`crate::ApiConfig::max_requests_per_s`] requests per second on
//! average, with bursts up to the same number; beyond that it gets 429 `rate_limited` with a
//! `Retry-After` header. Clients are told apart by the TCP peer address ([`serve`] records
//! it); requests without one (in-process tests) share one bucket. At most
//! [`MAX_CLIENTS`] buckets are kept; idle ones are dropped first.
//!
//! [`serve`]: crate::serve

use crate::error::ApiError;
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::Instant,
};

/// Most clients with a bucket at once.
pub const MAX_CLIENTS: usize = 10_000;

/// The buckets of every client.
#[derive(Debug)]
pub struct RateLimiter {
    per_s: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter of `per_s` requests per second per client (`0`: unlimited).
    pub fn new(per_s: u32) -> Arc<Self> {
        Arc::new(RateLimiter {
            per_s: f64::from(per_s),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token of `client`'s bucket at `now`; `Err(seconds)` until one is available.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        if self.per_s <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            // Drop the buckets that have refilled (their clients are idle).
            let full = self.per_s;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * full < full
            });
            if buckets.len() >= MAX_CLIENTS {
                return Err(1);
            }
        }
        let (tokens, at) = buckets.entry(client).or_insert((self.per_s, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_s).min(self.per_s);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_s).ceil().max(1.0) as u64)
        }
    }
}

/// The middleware: 429 `rate_limited` once the client's bucket is empty.
pub async fn limit(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match limiter.take(client, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(retry_s) => {
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "more than {} requests per second from {client}; retry in {retry_s} s",
                    limiter.per_s
                ),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_s.to_string()) {
                r.headers_mut().insert(RETRY_AFTER, v);
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_the_rate_and_clients_are_separate() {
        let l = RateLimiter::new(2);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!(l.take(a, t0), Ok(()));
        assert_eq!(l.take(a, t0), Ok(()));
        assert_eq!(l.take(a, t0), Err(1), "burst of 2 spent");
        assert_eq!(l.take(b, t0), Ok(()), "another client has its own bucket");
        assert_eq!(l.take(a, t0 + Duration::from_millis(500)), Ok(()));
        assert!(l.take(a, t0 + Duration::from_millis(500)).is_err());
        assert_eq!(l.take(a, t0 + Duration::from_secs(10)), Ok(()));
        let unlimited = RateLimiter::new(0);
        for _ in 0..10_000 {
            assert_eq!(unlimited.take(a, t0), Ok(()));
        }
    }
}
