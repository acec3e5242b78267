//! Helpers for the canonical codec: bounded UTF-8 strings and byte vectors.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, Write};

/// Writes a string as a varint length followed by its UTF-8 bytes.
pub fn write_str(s: &str, buf: &mut impl BufMut) {
    s.len().write(buf);
    buf.put_slice(s.as_bytes());
}

/// The encoded size of a string written by [`write_str`].
pub fn str_size(s: &str) -> usize {
    s.len().encode_size() + s.len()
}

/// Reads a string of at most `max_bytes` bytes that must be valid UTF-8.
pub fn read_str(
    buf: &mut impl Buf,
    max_bytes: usize,
    ctx: &'static str,
) -> Result<String, CodecError> {
    let bytes = read_bytes(buf, max_bytes)?;
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid(ctx, "not valid UTF-8"))
}

/// Reads a byte vector of at most `max_bytes` bytes (never allocates past the limit).
pub fn read_bytes(buf: &mut impl Buf, max_bytes: usize) -> Result<Vec<u8>, CodecError> {
    Vec::<u8>::read_cfg(buf, &(RangeCfg::new(0..=max_bytes), ()))
}

/// Reads a vector of at most `max_items` items, each read with `cfg`.
pub fn read_vec<T: Read>(
    buf: &mut impl Buf,
    max_items: usize,
    cfg: &T::Cfg,
) -> Result<Vec<T>, CodecError> {
    Vec::<T>::read_cfg(buf, &(RangeCfg::new(0..=max_items), cfg.clone()))
}
