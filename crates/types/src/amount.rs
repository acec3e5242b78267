//! Token amounts: u128 with checked arithmetic only. Overflow is an error, never a wrap.

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::{fmt, iter::Sum, str::FromStr};

/// An amount of the native coin in its smallest unit.
///
/// JSON: a decimal string (u128 does not fit a JSON number); a non-negative integer JSON
/// number is also accepted on input.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub u128);

/// An arithmetic operation on amounts would overflow or underflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The sum exceeds u128::MAX.
    #[error("amount overflow")]
    Overflow,
    /// The difference would be negative.
    #[error("amount underflow (insufficient balance)")]
    Underflow,
    /// The text is not a non-negative decimal integer that fits in u128.
    #[error("invalid amount: expected a non-negative decimal integer below 2^128")]
    Parse,
}

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// `self + other`, or an error on overflow.
    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_add(other.0)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    /// `self - other`, or an error if `other > self`.
    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_sub(other.0)
            .map(Amount)
            .ok_or(AmountError::Underflow)
    }

    /// `self * n`, or an error on overflow.
    pub fn checked_mul(self, n: u128) -> Result<Amount, AmountError> {
        self.0
            .checked_mul(n)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    /// Sums amounts, failing on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(iter: I) -> Result<Amount, AmountError> {
        iter.into_iter().try_fold(Amount::ZERO, Amount::checked_add)
    }

    /// Whether the amount is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Summing with `Iterator::sum` panics on overflow (use [`Amount::checked_sum`] on
/// untrusted values); it exists for invariant checks over already-validated state.
impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        Amount::checked_sum(iter).expect("amount sum overflow in invariant check")
    }
}

impl From<u128> for Amount {
    fn from(v: u128) -> Self {
        Amount(v)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(AmountError::Parse);
        }
        s.parse::<u128>()
            .map(Amount)
            .map_err(|_| AmountError::Parse)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer amount as a decimal string or number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount(v as u128))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Amount, E> {
                Ok(Amount(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                u128::try_from(v)
                    .map(Amount)
                    .map_err(|_| E::custom(AmountError::Parse))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Amount, E> {
                Err(E::custom(
                    "amounts must be integers (use a decimal string for large values)",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

impl Write for Amount {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl Read for Amount {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Amount(u128::read_cfg(buf, &())?))
    }
}

impl FixedSize for Amount {
    const SIZE: usize = 16;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic() {
        assert_eq!(
            Amount(u128::MAX).checked_add(Amount(1)),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            Amount(1).checked_sub(Amount(2)),
            Err(AmountError::Underflow)
        );
        assert_eq!(Amount(2).checked_add(Amount(3)), Ok(Amount(5)));
        assert_eq!(
            Amount::checked_sum([Amount(u128::MAX), Amount(1)]),
            Err(AmountError::Overflow)
        );
    }

    #[test]
    fn json_forms() {
        let a: Amount =
            serde_json::from_str("\"340282366920938463463374607431768211455\"").unwrap();
        assert_eq!(a, Amount(u128::MAX));
        assert!(
            serde_json::from_str::<Amount>("\"340282366920938463463374607431768211456\"").is_err()
        );
        assert_eq!(serde_json::from_str::<Amount>("100").unwrap(), Amount(100));
        assert!(serde_json::from_str::<Amount>("-1").is_err());
        assert!(serde_json::from_str::<Amount>("1.5").is_err());
        assert!(serde_json::from_str::<Amount>("\"+5\"").is_err());
        assert_eq!(serde_json::to_string(&Amount(7)).unwrap(), "\"7\"");
    }
}
