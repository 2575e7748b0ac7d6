//! Integer units as people read and type them, without floats: volumes
//! and rates are µL and µL/h inside and on the wire, and mL and mL/h with
//! up to three decimals to people. The web pages and the store's own
//! messages (a refused order names what was typed) share these.

/// `2500` µL as `2.5`; whole numbers without a point.
pub fn milli(v: u32) -> String {
    let (whole, frac) = (v / 1000, v % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Reads `2.5` (mL) as `2500` (µL): digits, an optional point and at most
/// three decimals. `None` for anything else, negative, or too large.
pub fn parse_milli(s: &str) -> Option<u32> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if frac.len() > 3
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u32 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().ok()?
    };
    whole.checked_mul(1000)?.checked_add(frac)
}

/// `2500` µL as `2.5 mL`.
pub fn ml(v: u32) -> String {
    format!("{} mL", milli(v))
}

/// `2500` µL/h as `2.5 mL/h`.
pub fn ml_h(v: u32) -> String {
    format!("{} mL/h", milli(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip() {
        for (ul, text) in [
            (0, "0"),
            (2500, "2.5"),
            (4000, "4"),
            (1, "0.001"),
            (200_000, "200"),
        ] {
            assert_eq!(milli(ul), text);
            assert_eq!(parse_milli(text), Some(ul));
        }
        assert_eq!(parse_milli(".5"), Some(500));
        assert_eq!(parse_milli(" 12.25 "), Some(12_250));
        for bad in ["", ".", "-1", "1.2345", "1e3", "abc", "1,5", "99999999"] {
            assert_eq!(parse_milli(bad), None, "{bad:?}");
        }
    }
}
