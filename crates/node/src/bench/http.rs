//! A small HTTP/1.1 client for the node's API (hyper-util's pooled client over plain TCP).

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, StatusCode, Uri, body::Incoming, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use std::time::Duration;

/// Largest response body read, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Longest wait for a whole response, in milliseconds.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;

/// Times a request answered 429 (rate limited) is sent again.
pub const MAX_RATE_LIMITED_RETRIES: u32 = 30;
/// Wait before sending a rate-limited request again, in milliseconds (the node's bucket
/// refills continuously, so a short wait suffices).
pub const RATE_LIMITED_WAIT_MS: u64 = 200;

/// A client bound to one node's base URL (`http://host:port`).
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl HttpClient {
    /// A client for `base` (`http://host:port`, no path).
    pub fn new(base: &str) -> anyhow::Result<HttpClient> {
        let base = base.trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .with_context(|| format!("--target {base:?}: not a URL"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            bail!("--target {base:?}: expected http://HOST:PORT (plain HTTP)");
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            bail!("--target {base:?}: expected no path");
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        Ok(HttpClient { client, base })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        Ok(Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?)
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        let what = format!("{} {}", req.method(), req.uri());
        let fut = async {
            let res = self.client.request(req).await?;
            let status = res.status();
            let body = Limited::new(res.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), fut)
            .await
            .with_context(|| format!("{what}: no answer within {REQUEST_TIMEOUT_MS} ms"))?
            .with_context(|| what.clone())
    }

    /// Sends until the answer is not 429 (the node's per-client rate limit), waiting its
    /// `Retry-After` seconds between tries, at most [`MAX_RATE_LIMITED_RETRIES`] times.
    async fn send_retrying(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut tries = 0;
        loop {
            let (status, answer) = self
                .send(self.request(method.clone(), path, body.clone())?)
                .await?;
            if status != StatusCode::TOO_MANY_REQUESTS || tries == MAX_RATE_LIMITED_RETRIES {
                return Ok((status, answer));
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(RATE_LIMITED_WAIT_MS)).await;
        }
    }

    /// `GET path`: status and body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send_retrying(Method::GET, path, Bytes::new()).await
    }

    /// `GET path` expecting 200 and a JSON body.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let (status, body) = self.get(path).await?;
        if status != StatusCode::OK {
            bail!(
                "GET {path}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))
    }

    /// `POST path` with a JSON `body`: status and body.
    pub async fn post(&self, path: &str, body: Bytes) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send_retrying(Method::POST, path, body).await
    }

    /// `GET path` as a stream (for server-sent events): the response body, once the head
    /// says 200.
    pub async fn stream(&self, path: &str) -> anyhow::Result<Incoming> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "text/event-stream")
            .body(Full::new(Bytes::new()))?;
        let res = tokio::time::timeout(
            Duration::from_millis(REQUEST_TIMEOUT_MS),
            self.client.request(req),
        )
        .await
        .with_context(|| format!("GET {path}: no answer"))?
        .with_context(|| format!("GET {}{path}", self.base))?;
        if res.status() != StatusCode::OK {
            bail!("GET {path}: {}", res.status());
        }
        Ok(res.into_body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(HttpClient::new("http://127.0.0.1:3030").is_ok());
        assert_eq!(
            HttpClient::new("http://127.0.0.1:3030/")
                .expect("ok")
                .base(),
            "http://127.0.0.1:3030"
        );
        assert!(HttpClient::new("https://example.invalid").is_err());
        assert!(HttpClient::new("127.0.0.1:3030").is_err());
        assert!(HttpClient::new("http://127.0.0.1:3030/api").is_err());
    }
}
