//! Crosslink certificates: the encoded simplex finalization of a block, verifiable by any node
//! that knows only the committee's public keys and the chain's namespace.

use crate::keys::{KeyError, committee_set, from_cw_public_key};
use commonware_codec::{Decode, Encode};
use commonware_consensus::{
    Epochable, Viewable,
    simplex::types::{Activity, Attributable, Finalization},
};
use commonware_cryptography::{ed25519, sha256};
use commonware_parallel::Sequential;
use commonware_utils::ordered::Set;
use rand_core::CryptoRng;
use vision_types::{Hash, PublicKey, limits::MAX_CERTIFICATE_BYTES};

/// The signing scheme of every chain: attributable ed25519 signatures, quorum n − ⌊(n−1)/3⌋.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;

/// The digest consensus orders: a block's header hash.
pub type Digest = sha256::Digest;

/// A simplex finalization of one block.
pub type FinalizationCert = Finalization<Scheme, Digest>;

/// Converts a block hash to the consensus digest.
pub fn to_digest(hash: &Hash) -> Digest {
    sha256::Digest::from(hash.0)
}

/// Converts a consensus digest to a block hash.
pub fn from_digest(digest: &Digest) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Hash(out)
}

/// Encodes a finalization into the opaque `certificate` bytes of a crosslink.
pub fn encode_certificate(finalization: &FinalizationCert) -> Vec<u8> {
    finalization.encode().to_vec()
}

/// Why a certificate was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Longer than [`MAX_CERTIFICATE_BYTES`].
    #[error("certificate is {0} bytes, more than the limit")]
    TooLarge(usize),
    /// Not a canonical finalization encoding for a committee of this size.
    #[error("certificate does not decode: {0}")]
    Decode(String),
    /// The committee is not usable.
    #[error("bad committee: {0}")]
    Committee(#[from] KeyError),
    /// The certificate is for another block.
    #[error("certificate is for block {found}, expected {expected}")]
    WrongBlock {
        /// The block the caller expects.
        expected: Hash,
        /// The block the certificate finalizes.
        found: Hash,
    },
    /// The certificate is from another epoch.
    #[error("certificate is for epoch {found}, expected {expected}")]
    WrongEpoch {
        /// The epoch the caller expects.
        expected: u64,
        /// The epoch of the certificate.
        found: u64,
    },
    /// Signatures invalid, under quorum, for another namespace or another committee.
    #[error("certificate signatures do not verify for this committee and namespace")]
    BadSignatures,
}

/// Decodes certificate bytes for a committee of `committee_size` members (bounded decode).
pub fn decode_certificate(
    bytes: &[u8],
    committee_size: usize,
) -> Result<FinalizationCert, CertError> {
    if bytes.len() > MAX_CERTIFICATE_BYTES {
        return Err(CertError::TooLarge(bytes.len()));
    }
    FinalizationCert::decode_cfg(bytes.to_vec(), &committee_size)
        .map_err(|e| CertError::Decode(e.to_string()))
}

/// Verifies that `cert_bytes` is a finalization of `expected_block_hash` at `expected_epoch`,
/// signed by a quorum (≥ 2/3) of `committee` under `namespace`.
///
/// `rng` must be a real cryptographic RNG (batch verification coefficients); pass the runtime
/// context. The verdict does not depend on it.
pub fn verify_finalization_certificate(
    cert_bytes: &[u8],
    namespace: &[u8],
    committee: &[PublicKey],
    expected_block_hash: &Hash,
    expected_epoch: u64,
    rng: &mut impl CryptoRng,
) -> Result<(), CertError> {
    let set = committee_set(committee)?;
    let finalization = decode_certificate(cert_bytes, set.len())?;
    let found = from_digest(&finalization.proposal.payload);
    if &found != expected_block_hash {
        return Err(CertError::WrongBlock {
            expected: *expected_block_hash,
            found,
        });
    }
    let epoch = finalization.epoch().get();
    if epoch != expected_epoch {
        return Err(CertError::WrongEpoch {
            expected: expected_epoch,
            found: epoch,
        });
    }
    let verifier = Scheme::verifier(namespace, set);
    if !finalization.verify(rng, &verifier, &Sequential) {
        return Err(CertError::BadSignatures);
    }
    Ok(())
}

/// The members of `committee` whose signatures `cert_bytes` (a finalization certificate for a
/// committee of that size) carries, in committee key order. Decodes only: the signatures are
/// not verified (use [`verify_finalization_certificate`] first on untrusted bytes).
pub fn certificate_signers(
    cert_bytes: &[u8],
    committee: &[PublicKey],
) -> Result<Vec<PublicKey>, CertError> {
    let set = committee_set(committee)?;
    let finalization = decode_certificate(cert_bytes, set.len())?;
    Ok(finalization
        .certificate
        .signers
        .iter()
        .filter_map(|p| set.get(p.get() as usize))
        .map(from_cw_public_key)
        .collect())
}

/// Most bytes of one encoded piece of equivocation evidence (two signed votes).
pub const MAX_EVIDENCE_BYTES: usize = 1024;

/// What a piece of equivocation evidence proves: `member` signed two conflicting votes in
/// `view` of `epoch` (two different proposals, or a nullify and a finalize).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The committee member that equivocated.
    pub member: PublicKey,
    /// The consensus view.
    pub view: u64,
    /// The committee epoch.
    pub epoch: u64,
}

/// Simplex's fault activities (conflicting notarizes, conflicting finalizes, nullify and
/// finalize in one view), encoded: the evidence a chain's engine reports.
pub(crate) fn encode_fault(activity: &Activity<Scheme, Digest>) -> Option<Vec<u8>> {
    matches!(
        activity,
        Activity::ConflictingNotarize(_)
            | Activity::ConflictingFinalize(_)
            | Activity::NullifyFinalize(_)
    )
    .then(|| activity.encode().to_vec())
}

/// Decodes evidence bytes for `committee` (bounded): the fault activity and what it claims.
/// The signatures are not checked (see [`verify_fault_evidence`]).
fn decode_fault(
    bytes: &[u8],
    set: &Set<ed25519::PublicKey>,
) -> Result<(Activity<Scheme, Digest>, Fault), CertError> {
    if bytes.len() > MAX_EVIDENCE_BYTES {
        return Err(CertError::TooLarge(bytes.len()));
    }
    let activity = Activity::<Scheme, Digest>::decode_cfg(bytes.to_vec(), &set.len())
        .map_err(|e| CertError::Decode(e.to_string()))?;
    let (signer, view, epoch) = match &activity {
        Activity::ConflictingNotarize(c) => (c.signer(), c.view(), c.epoch()),
        Activity::ConflictingFinalize(c) => (c.signer(), c.view(), c.epoch()),
        Activity::NullifyFinalize(c) => (c.signer(), c.view(), c.epoch()),
        _ => return Err(CertError::Decode("not equivocation evidence".into())),
    };
    let member = set
        .get(signer.get() as usize)
        .map(from_cw_public_key)
        .ok_or_else(|| CertError::Decode("signer outside the committee".into()))?;
    let fault = Fault {
        member,
        view: view.get(),
        epoch: epoch.get(),
    };
    Ok((activity, fault))
}

/// What already-verified evidence bytes (e.g. in a finalized beacon block) claim.
pub fn fault_of(bytes: &[u8], committee: &[PublicKey]) -> Result<Fault, CertError> {
    decode_fault(bytes, &committee_set(committee)?).map(|(_, f)| f)
}

/// Verifies equivocation evidence against `committee` under `namespace` in `expected_epoch`:
/// both votes are validly signed by the same member in the same view and conflict.
///
/// `rng` only seeds batch verification; the verdict does not depend on it.
pub fn verify_fault_evidence(
    bytes: &[u8],
    namespace: &[u8],
    committee: &[PublicKey],
    expected_epoch: u64,
    rng: &mut impl CryptoRng,
) -> Result<Fault, CertError> {
    let set = committee_set(committee)?;
    let (activity, fault) = decode_fault(bytes, &set)?;
    if fault.epoch != expected_epoch {
        return Err(CertError::WrongEpoch {
            expected: expected_epoch,
            found: fault.epoch,
        });
    }
    let verifier = Scheme::verifier(namespace, set);
    if !activity.verify(rng, &verifier, &Sequential) {
        return Err(CertError::BadSignatures);
    }
    Ok(fault)
}
