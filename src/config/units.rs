//! Sizes and durations as users write them in the config.
//!
//! Sizes: a plain TOML integer (bytes) or a string with a unit: `"512KiB"`, `"1MiB"`, `"10MB"`,
//! `"2GiB"`, `"100B"`, `"100"`. Binary units (`KiB`, `MiB`, `GiB`, `TiB`) are powers of 1024,
//! decimal ones (`kB`/`KB`, `MB`, `GB`, `TB`) powers of 1000 — the usual meaning of each, so a
//! value means what its author expects. Durations go through `humantime` (`"250ms"`, `"5m"`,
//! `"1h 30m"`, `"7days"`).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Visitor};

/// A size as written: an integer or a string with a unit. Parsed in `compile`, so a bad value
/// is one more collected error instead of the end of deserialization.
#[derive(Clone, Debug, PartialEq)]
pub enum RawSize {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = RawSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"512KiB\", \"1MiB\" or a number of bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSize, E> {
                i64::try_from(v)
                    .map(RawSize::Int)
                    .map_err(|_| E::custom("size is too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// Why a size, a duration or a percentage is not valid; the message says how to write it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnitError {
    #[error("size must not be negative, got {0}")]
    NegativeSize(i64),
    #[error(
        "invalid size {0:?}: expected a number of bytes or a number with a unit (B, KiB, MiB, GiB, TiB, kB, MB, GB, TB), such as \"512KiB\""
    )]
    BadSize(String),
    #[error("size {0:?} is too large")]
    SizeTooLarge(String),
    #[error(
        "invalid duration {text:?}: {reason}; write a number with a unit, such as \"250ms\", \"10s\", \"5m\" or \"1h\""
    )]
    BadDuration {
        text: String,
        reason: humantime::DurationError,
    },
    #[error("percent must be between 0 and 100, got {0}")]
    PercentRange(f64),
    #[error("percent has a resolution of 0.01, got {0}")]
    PercentResolution(f64),
}

/// Bytes in a size.
pub fn parse_size(raw: &RawSize) -> Result<u64, UnitError> {
    match raw {
        RawSize::Int(n) => u64::try_from(*n).map_err(|_| UnitError::NegativeSize(*n)),
        RawSize::Text(text) => parse_size_str(text),
    }
}

fn parse_size_str(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let bad = || UnitError::BadSize(text.to_owned());
    if digits.is_empty() {
        return Err(bad());
    }
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| UnitError::SizeTooLarge(text.to_owned()))
}

/// A duration such as `"250ms"`, `"5m"` or `"1h 30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(text.trim()).map_err(|reason| UnitError::BadDuration {
        text: text.to_owned(),
        reason,
    })
}

/// A percentage with 0.01 resolution, as basis points (0..=10000).
pub fn percent_to_bp(percent: f64) -> Result<u32, UnitError> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return Err(UnitError::PercentRange(percent));
    }
    let scaled = percent * 100.0;
    let rounded = scaled.round();
    // 0.01 resolution: a value such as 12.345 cannot be honoured exactly, so say so rather
    // than silently rounding a rollout share.
    if (scaled - rounded).abs() > 1e-6 {
        return Err(UnitError::PercentResolution(percent));
    }
    // The range check above bounds `rounded` to 0..=10000, so the cast is exact.
    Ok(rounded as u32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn size(s: &str) -> Result<u64, String> {
        parse_size(&RawSize::Text(s.to_owned())).map_err(|e| e.to_string())
    }

    #[test]
    fn sizes_with_units() {
        assert_eq!(size("512KiB"), Ok(512 * 1024));
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("10MB"), Ok(10_000_000));
        assert_eq!(size("2GiB"), Ok(2 << 30));
        assert_eq!(size("100"), Ok(100));
        assert_eq!(size("100B"), Ok(100));
        assert_eq!(size("64 KiB"), Ok(64 * 1024));
        assert_eq!(size("3kB"), Ok(3000));
        assert_eq!(parse_size(&RawSize::Int(4096)), Ok(4096));
    }

    #[test]
    fn bad_sizes() {
        for bad in ["", "KiB", "1.5MiB", "12 parsecs", "-1", "1mib"] {
            assert!(size(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(parse_size(&RawSize::Int(-5)).is_err());
        assert!(size("99999999999999TiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7days"), Ok(Duration::from_secs(7 * 86400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn percents() {
        assert_eq!(percent_to_bp(0.0), Ok(0));
        assert_eq!(percent_to_bp(10.0), Ok(1000));
        assert_eq!(percent_to_bp(0.01), Ok(1));
        assert_eq!(percent_to_bp(12.34), Ok(1234));
        assert_eq!(percent_to_bp(100.0), Ok(10_000));
        assert!(percent_to_bp(100.5).is_err());
        assert!(percent_to_bp(-1.0).is_err());
        assert!(percent_to_bp(0.001).is_err());
        assert!(percent_to_bp(f64::NAN).is_err());
    }
}
