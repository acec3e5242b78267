//! The shard management dashboard: one self-contained page (no external resources) that
//! polls `GET /shard/dashboard` every second.

/// The page, served at `/shard-dashboard.html`.
pub(crate) const HTML: &str = include_str!("dashboard.html");
