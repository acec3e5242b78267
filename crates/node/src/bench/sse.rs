//! An incremental server-sent-events parser (pure) and the `GET /events` payloads.
//!
//! Follows the WHATWG event-stream rules the bench needs: lines end with `\n`, `\r\n` or `\r`;
//! `event:` names the event (default `message`), `data:` lines are joined with `\n`, one space
//! after the colon is dropped, lines starting with `:` are comments (keep-alives), a blank line
//! dispatches the event; `id:`, `retry:` and unknown fields are ignored.

use serde::Deserialize;

/// Longest line the parser buffers, in bytes (a block event with thousands of transaction ids
/// is far below it).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The event name (`message` if the stream named none).
    pub event: String,
    /// The data lines, joined with `\n`.
    pub data: String,
}

/// A line over [`MAX_LINE_BYTES`], or bytes that are not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line longer than the limit.
    #[error("event-stream line longer than {0} bytes")]
    LineTooLong(usize),
    /// Not UTF-8.
    #[error("event-stream line is not UTF-8")]
    NotUtf8,
}

/// The parser state between chunks.
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    max_line_bytes: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(MAX_LINE_BYTES)
    }
}

impl SseParser {
    /// A parser refusing lines longer than `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> SseParser {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            event: None,
            data: None,
            max_line_bytes,
        }
    }

    /// Feeds the next bytes of the stream; returns the events they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(e) = self.line_done(&line)? {
                        out.push(e);
                    }
                }
                _ => {
                    if self.line.len() >= self.max_line_bytes {
                        return Err(SseError::LineTooLong(self.max_line_bytes));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            let event = self.event.take();
            return Ok(self.data.take().map(|data| SseEvent {
                event: event.unwrap_or_else(|| "message".into()),
                data,
            }));
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        Ok(None)
    }
}

/// The data of an `event: block`: the API's own type.
pub use vision_api::backend::BlockEvent as BlockEventData;

/// The data of an `event: lagged`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct LaggedData {
    /// Events this client lost.
    pub skipped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use vision_types::{Hash, ShardId};

    #[test]
    fn events_across_chunk_boundaries() {
        let mut p = SseParser::default();
        let stream = b": keep-alive\n\nevent: block\ndata: {\"a\":1}\n\nevent: lagged\ndata: {\"skipped\": 3}\n\n";
        // Every split point gives the same events.
        for at in 0..stream.len() {
            let mut p2 = SseParser::default();
            let mut got = p2.push(&stream[..at]).expect("parse");
            got.extend(p2.push(&stream[at..]).expect("parse"));
            assert_eq!(got.len(), 2, "split at {at}");
            assert_eq!(got[0].event, "block");
            assert_eq!(got[0].data, "{\"a\":1}");
            assert_eq!(got[1].event, "lagged");
        }
        // Byte by byte.
        let mut got = Vec::new();
        for b in stream {
            got.extend(p.push(&[*b]).expect("parse"));
        }
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn line_endings_multiline_data_and_defaults() {
        let mut p = SseParser::default();
        let got = p
            .push(b"data:x\r\ndata: y\r\rid: 7\nretry: 10\nevent:e\ndata\n\n:only a comment\n\n")
            .expect("parse");
        assert_eq!(
            got,
            vec![
                SseEvent {
                    event: "message".into(),
                    data: "x\ny".into()
                },
                SseEvent {
                    event: "e".into(),
                    data: String::new()
                }
            ]
        );
        // A CR at the end of one chunk and its LF at the start of the next are one line end.
        let mut p = SseParser::default();
        assert!(p.push(b"data: a\r").expect("parse").is_empty());
        assert!(p.push(b"\n").expect("parse").is_empty());
        assert_eq!(p.push(b"\r\n").expect("parse").len(), 1);
    }

    #[test]
    fn limits_and_encoding() {
        let mut p = SseParser::new(8);
        assert_eq!(p.push(b"data: 123456789"), Err(SseError::LineTooLong(8)));
        let mut p = SseParser::default();
        assert_eq!(p.push(b"data: \xff\n"), Err(SseError::NotUtf8));
    }

    #[test]
    fn block_event_json() {
        let id = Hash::sha256(b"tx");
        let json = format!(
            r#"{{"shard_id":2,"height":9,"timestamp_ms":5,"finalized_ms":6,"tx_ids":["{id}"],"failed_tx_ids":[],"completed_origin_tx_ids":["{id}"]}}"#
        );
        let e: BlockEventData = serde_json::from_str(&json).expect("block event");
        assert_eq!(e.shard_id, ShardId(2));
        assert_eq!(e.tx_ids, vec![id]);
        assert_eq!(e.completed_origin_tx_ids, vec![id]);
        let l: LaggedData = serde_json::from_str(r#"{"skipped": 12}"#).expect("lagged");
        assert_eq!(l.skipped, 12);
    }
}
