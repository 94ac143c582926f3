//! Exact conversions between integer token units and decimal strings.
//!
//! Amounts are always integers of the token's smallest unit; these helpers exist for
//! display and for parsing what a human typed, and never go through floating point.

/// Formats `units` of a token with `decimals` decimals, trimming trailing zeros
/// (`format_units(1_500_000, 6) == "1.5"`).
pub fn format_units(units: u128, decimals: u8) -> String {
    let scale = 10u128.pow(decimals.into());
    let (whole, frac) = (units / scale, units % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = usize::from(decimals));
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Whether a token's symbol may be shown beside amounts: a symbol is the token deployer's
/// text, so only a short word (1 to 11 ASCII letters and digits, `USDC`) is.
pub fn is_shown_symbol(symbol: &str) -> bool {
    (1..=11).contains(&symbol.len()) && symbol.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Converts decimal hours (`"1"`, `"0.5"`) to whole seconds, exactly; fails on what is
/// not a non-negative decimal or not a whole number of seconds. Zero is zero.
pub fn hours_to_seconds(hours: &str) -> Result<u64, String> {
    let micro_seconds = parse_units(hours, 6)? * 3600;
    if micro_seconds % 1_000_000 != 0 {
        return Err(format!("{hours} h is not a whole number of seconds"));
    }
    u64::try_from(micro_seconds / 1_000_000).map_err(|_| format!("{hours} h is too long"))
}

/// Parses a non-negative decimal such as `"0.35"` into integer units with `decimals`
/// decimals. Fails on signs, exponents, more fractional digits than `decimals`, or overflow.
pub fn parse_units(text: &str, decimals: u8) -> Result<u128, String> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(whole) || (whole.is_empty() && digits(frac))) || (!frac.is_empty() && !digits(frac))
    {
        return Err(format!("`{text}` is not a non-negative decimal number"));
    }
    if frac.len() > usize::from(decimals) {
        return Err(format!("`{text}` has more than {decimals} decimal places"));
    }
    let overflow = || format!("`{text}` is too large");
    let scale = 10u128.pow(decimals.into());
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| overflow())? };
    let frac: u128 = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<width$}", width = usize::from(decimals));
        padded.parse().map_err(|_| overflow())?
    };
    whole.checked_mul(scale).and_then(|w| w.checked_add(frac)).ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_exactly() {
        assert_eq!(format_units(0, 6), "0");
        assert_eq!(format_units(1_500_000, 6), "1.5");
        assert_eq!(format_units(1, 6), "0.000001");
        assert_eq!(format_units(360_000, 6), "0.36");
        assert_eq!(format_units(42, 0), "42");
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_units("0.36", 6), Ok(360_000));
        assert_eq!(parse_units("2", 6), Ok(2_000_000));
        assert_eq!(parse_units(".5", 6), Ok(500_000));
        assert_eq!(parse_units("1.", 6), Ok(1_000_000));
        assert_eq!(parse_units("0.000001", 6), Ok(1));
    }

    #[test]
    fn rejects_what_is_not_exact() {
        for bad in ["", ".", "-1", "1e3", "0.0000001", "1.2.3", "abc", " 1"] {
            assert!(parse_units(bad, 6).is_err(), "{bad:?} should fail");
        }
        assert!(parse_units("340282366920938463463374607431768211455", 6).is_err());
    }

    #[test]
    fn round_trips() {
        for units in [0u128, 1, 99, 1_000_000, 123_456_789] {
            assert_eq!(parse_units(&format_units(units, 6), 6), Ok(units));
        }
    }
}
