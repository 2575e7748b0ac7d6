//! MAC addresses as the device API writes them: `AA:BB:CC:DD:EE:FF`.

use core::fmt;

/// A device's hardware (MAC) address, the paper's binding between an account
/// and the one pump allowed to use it.
///
/// Parsed once at the edge (case-insensitive, colon-separated) and carried as
/// six bytes afterwards, so two spellings of one address always compare
/// equal. Printed in upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddress(pub [u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacParseError;

impl fmt::Display for MacParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a MAC address is six hex byte pairs separated by colons, like AA:BB:CC:DD:EE:FF",
        )
    }
}

impl MacAddress {
    /// Parses `AA:BB:CC:DD:EE:FF`, upper or lower case; nothing else.
    pub fn parse(s: &str) -> Result<Self, MacParseError> {
        let b = s.as_bytes();
        if b.len() != 17 {
            return Err(MacParseError);
        }
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().enumerate() {
            let at = i * 3;
            if i < 5 && b[at + 2] != b':' {
                return Err(MacParseError);
            }
            *byte = (hex_digit(b[at])? << 4) | hex_digit(b[at + 1])?;
        }
        Ok(MacAddress(out))
    }

    /// Writes the canonical upper-case form into a fixed buffer, so that
    /// firmware can print or send it without a heap.
    pub fn to_ascii(&self) -> [u8; 17] {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = [b':'; 17];
        for (i, byte) in self.0.iter().enumerate() {
            out[i * 3] = HEX[(byte >> 4) as usize];
            out[i * 3 + 1] = HEX[(byte & 0xF) as usize];
        }
        out
    }
}

fn hex_digit(c: u8) -> Result<u8, MacParseError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(MacParseError),
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ascii = self.to_ascii();
        // The buffer holds only hex digits and colons, which are ASCII.
        f.write_str(core::str::from_utf8(&ascii).map_err(|_| fmt::Error)?)
    }
}

impl core::str::FromStr for MacAddress {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for MacAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ascii = self.to_ascii();
        let text = core::str::from_utf8(&ascii).map_err(serde::ser::Error::custom)?;
        s.serialize_str(text)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = MacAddress;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a MAC address like AA:BB:CC:DD:EE:FF")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MacAddress, E> {
                MacAddress::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for MacAddress {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"))
            .examples(["AA:BB:CC:DD:EE:FF"])
            .description(Some(
                "Device MAC address, colon-separated, case-insensitive.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for MacAddress {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_cases_to_one_value() {
        let a = MacAddress::parse("aa:bb:cc:0d:ee:ff").unwrap();
        let b = MacAddress::parse("AA:BB:CC:0D:EE:FF").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0, [0xAA, 0xBB, 0xCC, 0x0D, 0xEE, 0xFF]);
    }

    #[test]
    fn prints_upper_case() {
        let a = MacAddress::parse("aa:bb:cc:0d:ee:ff").unwrap();
        assert_eq!(std::format!("{a}"), "AA:BB:CC:0D:EE:FF");
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in [
            "",
            "AA:BB:CC:DD:EE",
            "AA-BB-CC-DD-EE-FF",
            "AA:BB:CC:DD:EE:FG",
            "AA:BB:CC:DD:EE:FF:",
            "AABB:CC:DD:EE:FF:",
            "ÄA:BB:CC:DD:EE:F",
        ] {
            assert_eq!(MacAddress::parse(bad), Err(MacParseError), "{bad}");
        }
    }

    #[test]
    fn json_round_trip() {
        let a: MacAddress = serde_json::from_str("\"0a:1b:2c:3d:4e:5f\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"0A:1B:2C:3D:4E:5F\"");
    }
}
