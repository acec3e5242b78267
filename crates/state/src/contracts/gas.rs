//! The gas schedule and the meter.
//!
//! Every call pays, in this order:
//!
//! | what | gas |
//! |---|---|
//! | the call itself | [`GAS_CALL_BASE`] |
//! | each byte of the method name and arguments | [`GAS_PER_INPUT_BYTE`] |
//! | each state read | [`GAS_READ_BASE`] + [`GAS_PER_BYTE_READ`] × (key + value bytes) |
//! | each state write | [`GAS_WRITE_BASE`] + [`GAS_PER_BYTE_WRITTEN`] × (key + value bytes) |
//! | each new state entry a write creates | [`GAS_PER_NEW_ENTRY`] more |
//! | each state delete | [`GAS_DELETE`] |
//! | each checked big-integer multiply/divide (DEX math) | [`GAS_MATH`] |
//! | each native-coin payment effect | [`GAS_PER_PAYMENT`] |
//! | each byte of the JSON result | [`GAS_PER_RESULT_BYTE`] |
//!
//! A call never costs more than its `gas_limit`: the operation that would cross it fails the
//! call with "out of gas" and the call reports `gas_used == gas_limit`.

use super::ContractError;

/// Charged once per call, before anything else.
pub const GAS_CALL_BASE: u64 = 1_000;
/// Per byte of the method name plus all arguments.
pub const GAS_PER_INPUT_BYTE: u64 = 2;
/// Per state read (hit or miss).
pub const GAS_READ_BASE: u64 = 100;
/// Per byte of key and value read.
pub const GAS_PER_BYTE_READ: u64 = 1;
/// Per state write.
pub const GAS_WRITE_BASE: u64 = 500;
/// Per byte of key and value written.
pub const GAS_PER_BYTE_WRITTEN: u64 = 10;
/// Extra per state entry created (storage growth).
pub const GAS_PER_NEW_ENTRY: u64 = 2_000;
/// Per state entry deleted.
pub const GAS_DELETE: u64 = 200;
/// Per checked 128-bit multiply or divide in template math.
pub const GAS_MATH: u64 = 20;
/// Per native-coin payment the call asks the state machine to make.
pub const GAS_PER_PAYMENT: u64 = 1_000;
/// Per byte of the serialized JSON result.
pub const GAS_PER_RESULT_BYTE: u64 = 1;

/// Largest `gas_budget` a contract may be deployed with (ten times the default budget).
pub const MAX_GAS_BUDGET: u64 = 10_000_000;
/// Smallest `gas_budget` a contract may be deployed with (one call's base cost).
pub const MIN_GAS_BUDGET: u64 = GAS_CALL_BASE;

/// Counts gas against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasMeter {
    used: u64,
    limit: u64,
}

impl GasMeter {
    /// A meter with nothing used.
    pub fn new(limit: u64) -> Self {
        GasMeter { used: 0, limit }
    }

    /// Gas used so far (never above the limit).
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Charges `amount`; if that would cross the limit, uses the whole limit and fails.
    pub fn charge(&mut self, amount: u64) -> Result<(), ContractError> {
        match self.used.checked_add(amount) {
            Some(total) if total <= self.limit => {
                self.used = total;
                Ok(())
            }
            _ => {
                let needed = amount;
                self.used = self.limit;
                Err(ContractError::OutOfGas {
                    used: self.limit,
                    limit: self.limit,
                    needed,
                })
            }
        }
    }

    /// Charges `base + per_byte × bytes` (saturating: an absurd size simply runs out of gas).
    pub fn charge_bytes(
        &mut self,
        base: u64,
        per_byte: u64,
        bytes: usize,
    ) -> Result<(), ContractError> {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.charge(base.saturating_add(per_byte.saturating_mul(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_stops_at_limit() {
        let mut m = GasMeter::new(1_000);
        m.charge(600).unwrap();
        assert_eq!(m.used(), 600);
        let err = m.charge(500).unwrap_err();
        assert_eq!(m.used(), 1_000);
        assert_eq!(
            err.to_string(),
            "out of gas: used 1000 of limit 1000 (the next operation needed 500 more)"
        );
        assert!(m.charge(0).is_ok());
        assert!(m.charge(1).is_err());
        let mut m = GasMeter::new(u64::MAX);
        m.charge(u64::MAX).unwrap();
        assert!(m.charge_bytes(1, u64::MAX, usize::MAX).is_err());
    }
}
