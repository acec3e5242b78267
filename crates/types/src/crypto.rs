//! ed25519 keys and signatures.
//!
//! # Verification rules
//!
//! Every node verifies with [`ed25519-zebra`](https://docs.rs/ed25519-zebra) 5.x, which
//! implements the **ZIP-215** rules exactly, so every node gives the same answer for every
//! input, and batch verification gives the same answer as single verification:
//!
//! - the signature's `s` must be canonical (`s < ℓ`), otherwise it is rejected;
//! - the encodings of `A` (public key) and `R` need not be canonical: any 32 bytes that
//!   decode to a curve point are accepted (non-canonical `y` coordinates included);
//! - small-order public keys and small-order `R` are accepted (no "weak key" blacklist);
//! - the cofactored equation `[8][s]B = [8]R + [8][k]A` is checked, with
//!   `k = SHA-512(R || A || M)` over the bytes exactly as given.
//!
//! A small-order key is a key whose signatures anyone can forge; nobody who generated a key
//! honestly holds one. Rules are about agreement, not about protecting such a key.

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, str::FromStr};

/// An ed25519 public key (32 bytes as given; see the module docs for what verifies).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature (64 bytes: `R || s`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The public key bytes do not decode to a curve point.
    #[error("malformed public key")]
    MalformedKey,
    /// The signature is malformed or does not match the key and message.
    #[error("invalid signature")]
    InvalidSignature,
}

impl PublicKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Verifies `sig` over `msg` under the ZIP-215 rules.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        let vk = ed25519_zebra::VerificationKey::try_from(self.0)
            .map_err(|_| CryptoError::MalformedKey)?;
        vk.verify(&ed25519_zebra::Signature::from_bytes(&sig.0), msg)
            .map_err(|_| CryptoError::InvalidSignature)
    }
}

/// Verifies many signatures at once (much faster than one by one). Returns `Ok` only if every
/// signature is valid; on `Err`, verify one by one to find the culprits. ZIP-215 makes the
/// answer identical to verifying each item on its own.
pub fn batch_verify<'a, I>(items: I) -> Result<(), CryptoError>
where
    I: IntoIterator<Item = (&'a PublicKey, &'a [u8], &'a Signature)>,
{
    let mut v = ed25519_zebra::batch::Verifier::new();
    for (pk, msg, sig) in items {
        let vkb = ed25519_zebra::VerificationKeyBytes::from(pk.0);
        v.queue((vkb, ed25519_zebra::Signature::from_bytes(&sig.0), &msg));
    }
    v.verify(rand::rng())
        .map_err(|_| CryptoError::InvalidSignature)
}

/// An ed25519 signing key. Never serialized by serde; stored only by the node's key files.
#[derive(Clone)]
pub struct SecretKey(ed25519_zebra::SigningKey);

impl SecretKey {
    /// A fresh random key from the operating system's RNG.
    pub fn generate() -> Self {
        SecretKey(ed25519_zebra::SigningKey::new(rand::rng()))
    }

    /// The key whose 32-byte seed is `seed` (deterministic; for dev accounts and tests).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(ed25519_zebra::SigningKey::from(seed))
    }

    /// The 32-byte seed (for writing key files).
    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(ed25519_zebra::VerificationKeyBytes::from(&self.0).into())
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(pk={})", self.public_key())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", &hex::encode(self.0)[..16])
    }
}

/// Error parsing a hex key or signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {0} hex characters")]
pub struct ParseHexError(pub usize);

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], ParseHexError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return Err(ParseHexError(2 * N));
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| ParseHexError(2 * N))?;
    Ok(out)
}

impl FromStr for PublicKey {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex::<32>(s).map(PublicKey)
    }
}

impl FromStr for Signature {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex::<64>(s).map(Signature)
    }
}

macro_rules! hex_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_serde!(PublicKey);
hex_serde!(Signature);

impl Write for PublicKey {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }
}

impl Read for PublicKey {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(PublicKey(<[u8; 32]>::read_cfg(buf, &())?))
    }
}

impl FixedSize for PublicKey {
    const SIZE: usize = 32;
}

impl Write for Signature {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }
}

impl Read for Signature {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Signature(<[u8; 64]>::read_cfg(buf, &())?))
    }
}

impl FixedSize for Signature {
    const SIZE: usize = 64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_batch() {
        let sk = SecretKey::from_seed([7u8; 32]);
        let pk = sk.public_key();
        let sig = sk.sign(b"hello");
        assert!(pk.verify(b"hello", &sig).is_ok());
        assert_eq!(
            pk.verify(b"hellp", &sig),
            Err(CryptoError::InvalidSignature)
        );
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 10]).collect();
        let sigs: Vec<Signature> = msgs.iter().map(|m| sk.sign(m)).collect();
        assert!(batch_verify(msgs.iter().zip(&sigs).map(|(m, s)| (&pk, m.as_slice(), s))).is_ok());
        let mut bad = sigs.clone();
        bad[3].0[0] ^= 1;
        assert!(batch_verify(msgs.iter().zip(&bad).map(|(m, s)| (&pk, m.as_slice(), s))).is_err());
    }

    #[test]
    fn non_canonical_s_is_rejected_identically() {
        let sk = SecretKey::from_seed([9u8; 32]);
        let pk = sk.public_key();
        let mut sig = sk.sign(b"m");
        // s := s + ℓ is non-canonical (s >= ℓ); both single and batch verification reject it.
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, li) in sig.0[32..].iter_mut().zip(l) {
            let v = *byte as u16 + li as u16 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        assert!(pk.verify(b"m", &sig).is_err());
        assert!(batch_verify([(&pk, b"m".as_slice(), &sig)]).is_err());
    }

    #[test]
    fn seed_round_trip() {
        let sk = SecretKey::generate();
        assert_eq!(
            SecretKey::from_seed(sk.to_seed()).public_key(),
            sk.public_key()
        );
    }
}
