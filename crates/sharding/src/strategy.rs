//! The four committee-planning strategies.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// How validators are assigned to shard committees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// SHA-256 consistent hashing with virtual nodes: stable under churn.
    Hash,
    /// Reputation-balanced committees (snake draft, then improving swaps).
    Adaptive,
    /// Committees specialised by transaction type (node capabilities).
    Workload,
    /// Hash placement, then a bounded number of reputation-balancing swaps.
    Hybrid,
}

impl Strategy {
    /// Every strategy, in display order.
    pub const ALL: [Strategy; 4] = [
        Strategy::Hash,
        Strategy::Adaptive,
        Strategy::Workload,
        Strategy::Hybrid,
    ];

    /// The lowercase name (`hash`, `adaptive`, `workload`, `hybrid`).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Hash => "hash",
            Strategy::Adaptive => "adaptive",
            Strategy::Workload => "workload",
            Strategy::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown strategy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy {0:?}: expected one of hash, adaptive, workload, hybrid")]
pub struct ParseStrategyError(pub String);

impl FromStr for Strategy {
    type Err = ParseStrategyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseStrategyError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(s.to_string().parse::<Strategy>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        let err = "random".parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains("hash, adaptive, workload, hybrid"), "{err}");
        assert!(serde_json::from_str::<Strategy>("\"Hash\"").is_err());
    }
}
