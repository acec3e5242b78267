//! The shard management dashboard: one self-contained page (no external resources) that
//! polls `GET /shard/dashboard` every second.

/// The page, served at `/shard-dashboard.html`.
pub(crate) const HTML: &str = include_str!("dashboard.html");

/// The page's Content-Security-Policy: inline script and style only, requests only to this
/// origin, nothing else.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
