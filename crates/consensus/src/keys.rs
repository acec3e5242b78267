//! The one place that maps between `vision_types` ed25519 keys and commonware ed25519 keys.

use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::ed25519;
use commonware_utils::ordered::Set;
use vision_types::{PublicKey, SecretKey};

/// A key could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes are not a valid ed25519 public key.
    #[error("invalid ed25519 public key {0}")]
    InvalidPublicKey(PublicKey),
    /// A committee lists a key twice.
    #[error("duplicate committee member {0}")]
    DuplicateMember(PublicKey),
    /// A committee is empty.
    #[error("empty committee")]
    EmptyCommittee,
}

/// Converts a vision public key to a commonware one.
pub fn to_cw_public_key(pk: &PublicKey) -> Result<ed25519::PublicKey, KeyError> {
    ed25519::PublicKey::decode(pk.as_bytes().to_vec()).map_err(|_| KeyError::InvalidPublicKey(*pk))
}

/// Converts a commonware public key to a vision one.
pub fn from_cw_public_key(pk: &ed25519::PublicKey) -> PublicKey {
    let bytes = pk.encode();
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes[..32]);
    PublicKey(out)
}

/// Converts a vision secret key (its 32-byte seed) to a commonware private key.
pub fn to_cw_private_key(sk: &SecretKey) -> ed25519::PrivateKey {
    let seed = sk.to_seed();
    ed25519::PrivateKey::decode(seed.to_vec()).expect("32 bytes are always a valid seed")
}

/// Builds the ordered committee set (commonware sorts it; signer indices follow that order).
pub fn committee_set(committee: &[PublicKey]) -> Result<Set<ed25519::PublicKey>, KeyError> {
    if committee.is_empty() {
        return Err(KeyError::EmptyCommittee);
    }
    let keys = committee
        .iter()
        .map(to_cw_public_key)
        .collect::<Result<Vec<_>, _>>()?;
    let set = Set::from_iter_dedup(keys);
    if set.len() != committee.len() {
        let mut seen = std::collections::BTreeSet::new();
        let dup = committee
            .iter()
            .find(|k| !seen.insert(**k))
            .copied()
            .unwrap_or(committee[0]);
        return Err(KeyError::DuplicateMember(dup));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer as _;

    #[test]
    fn keys_round_trip_and_match() {
        let sk = SecretKey::from_seed([7; 32]);
        let cw = to_cw_private_key(&sk);
        assert_eq!(from_cw_public_key(&cw.public_key()), sk.public_key());
        assert_eq!(to_cw_public_key(&sk.public_key()).unwrap(), cw.public_key());
    }

    #[test]
    fn committee_rejects_duplicates_and_empty() {
        let a = SecretKey::from_seed([1; 32]).public_key();
        let b = SecretKey::from_seed([2; 32]).public_key();
        assert_eq!(committee_set(&[b, a]).unwrap().len(), 2);
        assert_eq!(committee_set(&[a, b, a]), Err(KeyError::DuplicateMember(a)));
        assert_eq!(committee_set(&[]), Err(KeyError::EmptyCommittee));
    }
}
