//! Validators as the planner sees them: an id, a reputation and declared capabilities.

use crate::params::{
    MAX_CAPABILITIES, MAX_CAPABILITY_BYTES, MAX_NODE_ID_BYTES, MAX_PLAN_NODES, PPM, WORKLOAD_TYPES,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{collections::BTreeSet, fmt};
use vision_types::Hash;

/// Weight of the prior in [`Reputation::observed`], in participation events (finalization
/// certificates): after this many events the observed ratio counts as much as the prior.
pub const REPUTATION_PRIOR_WEIGHT: u64 = 100;

/// A reputation in parts-per-million (`0..=1_000_000` for `0.0..=1.0`).
///
/// Decisions only ever use the integer. JSON reads and writes it as a number such as
/// `0.85` (rounded to the nearest ppm on input).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Reputation(u32);

impl Reputation {
    /// Zero reputation.
    pub const ZERO: Reputation = Reputation(0);
    /// Full reputation (1.0).
    pub const MAX: Reputation = Reputation(PPM);

    /// A reputation from parts-per-million; `None` above 1_000_000.
    pub fn from_ppm(ppm: u32) -> Option<Self> {
        (ppm <= PPM).then_some(Reputation(ppm))
    }

    /// A reputation from a fraction in `[0, 1]`, rounded to the nearest ppm. For input
    /// parsing only; `None` when not finite or out of range.
    pub fn from_f64(x: f64) -> Option<Self> {
        if !x.is_finite() || !(0.0..=1.0).contains(&x) {
            return None;
        }
        // In range by the check above, so the cast cannot saturate.
        Some(Reputation((x * f64::from(PPM)).round() as u32))
    }

    /// The value in parts-per-million.
    pub fn ppm(self) -> u32 {
        self.0
    }

    /// The value as a fraction, for display and JSON only.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / f64::from(PPM)
    }

    /// The reputation observed from consensus participation, with this one as the prior.
    ///
    /// `votes` counts finalization certificates the validator signed and `missed` those of
    /// its committee it is absent from. The result is a smoothed participation ratio that
    /// starts at the prior and moves towards the observed ratio as events accumulate:
    ///
    /// `score = (prior × K + votes × 1.0) / (K + votes + missed)` with
    /// `K =` [`REPUTATION_PRIOR_WEIGHT`] (the prior counts as K events),
    ///
    /// in integer parts-per-million, rounded down (so every node computes the same value).
    /// Always in `[0, 1]`; the prior when there are no events; never decreases with
    /// `votes`, never increases with `missed`.
    pub fn observed(self, votes: u64, missed: u64) -> Reputation {
        let k = u128::from(REPUTATION_PRIOR_WEIGHT);
        let num = u128::from(self.0) * k + u128::from(votes) * u128::from(PPM);
        let den = k + u128::from(votes) + u128::from(missed);
        // num <= PPM × (k + votes) <= PPM × den, so the quotient fits in 0..=PPM.
        Reputation((num / den) as u32)
    }

    /// The mean of some reputations, rounded down to a whole ppm; zero for none.
    pub fn mean(values: impl IntoIterator<Item = Reputation>) -> Reputation {
        let (sum, n) = values
            .into_iter()
            .fold((0u64, 0u64), |(s, n), r| (s + u64::from(r.0), n + 1));
        if n == 0 {
            return Reputation::ZERO;
        }
        // The mean of values <= PPM is <= PPM.
        Reputation((sum / n) as u32)
    }
}

impl fmt::Display for Reputation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / PPM, self.0 % PPM)
    }
}

impl fmt::Debug for Reputation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reputation({self})")
    }
}

impl Serialize for Reputation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Reputation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = f64::deserialize(d)?;
        Reputation::from_f64(x).ok_or_else(|| {
            serde::de::Error::custom(format!("reputation {x} is not a number in [0, 1]"))
        })
    }
}

/// A validator as the sharding planner sees it.
///
/// JSON: `{"id": "node-000", "reputation": 0.85, "capabilities": ["transfer"]}`
/// (`capabilities` may be omitted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Unique node id: 1..=64 printable, non-space characters.
    pub id: String,
    /// Reputation in `[0, 1]`, kept in ppm.
    pub reputation: Reputation,
    /// Transaction types the node is specialised for (e.g. `transfer`, `contract`,
    /// `governance`); the first one is its primary type under the workload strategy.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl NodeInfo {
    /// A node with the given id, reputation and capabilities.
    pub fn new(id: impl Into<String>, reputation: Reputation, capabilities: Vec<String>) -> Self {
        NodeInfo {
            id: id.into(),
            reputation,
            capabilities,
        }
    }

    /// Checks this node's own fields (not uniqueness among nodes).
    pub fn validate(&self) -> Result<(), NodeError> {
        let id = &self.id;
        if id.is_empty()
            || id.len() > MAX_NODE_ID_BYTES
            || !id.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(NodeError::InvalidId(id.clone()));
        }
        if self.reputation.ppm() > PPM {
            return Err(NodeError::InvalidReputation(id.clone()));
        }
        if self.capabilities.len() > MAX_CAPABILITIES {
            return Err(NodeError::TooManyCapabilities(id.clone()));
        }
        for c in &self.capabilities {
            if c.is_empty()
                || c.len() > MAX_CAPABILITY_BYTES
                || !c.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(NodeError::InvalidCapability {
                    node: id.clone(),
                    capability: c.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Why a set of nodes cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Node ids are 1..=64 printable ASCII characters without spaces.
    #[error(
        "invalid node id {0:?}: expected 1-{MAX_NODE_ID_BYTES} printable ASCII characters without spaces"
    )]
    InvalidId(String),
    /// Reputation must lie in `[0, 1]`.
    #[error("node {0:?}: reputation must be between 0 and 1")]
    InvalidReputation(String),
    /// A node declared more than [`MAX_CAPABILITIES`] capabilities.
    #[error("node {0:?}: more than {MAX_CAPABILITIES} capabilities")]
    TooManyCapabilities(String),
    /// A capability name is empty, too long or not printable.
    #[error(
        "node {node:?}: invalid capability {capability:?} (1-{MAX_CAPABILITY_BYTES} printable characters)"
    )]
    InvalidCapability {
        /// The node.
        node: String,
        /// The capability.
        capability: String,
    },
    /// Two nodes share an id.
    #[error("duplicate node id {0:?}")]
    DuplicateId(String),
    /// More nodes than any plan can hold.
    #[error("{0} nodes: at most {MAX_PLAN_NODES} nodes can be planned")]
    TooMany(usize),
}

/// Checks every node and that ids are unique.
pub fn validate_nodes(nodes: &[NodeInfo]) -> Result<(), NodeError> {
    if nodes.len() > MAX_PLAN_NODES {
        return Err(NodeError::TooMany(nodes.len()));
    }
    let mut seen = BTreeSet::new();
    for n in nodes {
        n.validate()?;
        if !seen.insert(n.id.as_str()) {
            return Err(NodeError::DuplicateId(n.id.clone()));
        }
    }
    Ok(())
}

/// `n` reproducible nodes for seed `seed`: ids `node-000`, `node-001`, …; reputation of node
/// `i` in `[0.5, 1.0]` derived from SHA-256(domain, seed, i); capability
/// `WORKLOAD_TYPES[i % 3]` (`transfer`, `contract`, `governance`, round robin).
pub fn generate_nodes(n: usize, seed: u64) -> Vec<NodeInfo> {
    (0..n)
        .map(|i| {
            let h = Hash::sha256_parts(&[
                b"vision-sharding/generate-node",
                &seed.to_be_bytes(),
                &(i as u64).to_be_bytes(),
            ]);
            let half = PPM / 2;
            let ppm = half + (h.prefix_u64() % u64::from(half + 1)) as u32;
            NodeInfo {
                id: format!("node-{i:03}"),
                reputation: Reputation(ppm),
                capabilities: vec![WORKLOAD_TYPES[i % WORKLOAD_TYPES.len()].to_string()],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reputation_json_round_trip() {
        let n: NodeInfo =
            serde_json::from_str(r#"{"id":"a","reputation":0.85,"capabilities":["transfer"]}"#)
                .unwrap();
        assert_eq!(n.reputation.ppm(), 850_000);
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"id":"a","reputation":0.85,"capabilities":["transfer"]}"#
        );
        assert!(serde_json::from_str::<NodeInfo>(r#"{"id":"a","reputation":1.5}"#).is_err());
        assert!(serde_json::from_str::<NodeInfo>(r#"{"id":"a","reputation":-0.1}"#).is_err());
        let n: NodeInfo = serde_json::from_str(r#"{"id":"a","reputation":1}"#).unwrap();
        assert_eq!(n.reputation, Reputation::MAX);
        assert!(n.capabilities.is_empty());
    }

    #[test]
    fn validation() {
        let ok = |id: &str| NodeInfo::new(id, Reputation::MAX, vec![]);
        assert!(validate_nodes(&[ok("a"), ok("b")]).is_ok());
        assert_eq!(
            validate_nodes(&[ok("a"), ok("a")]),
            Err(NodeError::DuplicateId("a".into()))
        );
        assert!(matches!(
            validate_nodes(&[ok("")]),
            Err(NodeError::InvalidId(_))
        ));
        assert!(matches!(
            validate_nodes(&[ok("a b")]),
            Err(NodeError::InvalidId(_))
        ));
        assert!(matches!(
            validate_nodes(&[ok(&"x".repeat(65))]),
            Err(NodeError::InvalidId(_))
        ));
    }

    #[test]
    fn generated_nodes_are_reproducible() {
        let a = generate_nodes(30, 42);
        assert_eq!(a, generate_nodes(30, 42));
        assert_ne!(a, generate_nodes(30, 43));
        assert_eq!(a[0].id, "node-000");
        assert_eq!(a[29].id, "node-029");
        assert!(
            a.iter()
                .all(|n| (500_000..=PPM).contains(&n.reputation.ppm()))
        );
        assert!(validate_nodes(&a).is_ok());
        assert_eq!(a[1].capabilities, vec!["contract".to_string()]);
    }
}
