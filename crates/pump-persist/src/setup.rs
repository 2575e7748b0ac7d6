//! What a pump is provisioned with at its first boot: the Wi-Fi it joins,
//! the server it talks to (and, over HTTPS, the certificate authority it
//! trusts for it) and the account it logs in with. Typed in over
//! the serial console (never compiled into the image) and kept in flash
//! beside the running state.

use heapless::{String, Vec};

/// The provisioning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Setup {
    /// The Wi-Fi network's name (802.11: at most 32 bytes).
    pub wifi_ssid: String<32>,
    /// Its WPA2 passphrase (at most 63 characters, 64 hex digits).
    pub wifi_password: String<64>,
    /// The server's base URL, like `http://10.0.0.2:8080`.
    pub server: String<96>,
    /// The patient account the pump logs in with.
    pub username: String<64>,
    /// Its password.
    pub password: String<128>,
    /// How often the pump asks for its index, ms (0: the firmware's
    /// default).
    pub poll_interval_ms: u32,
    /// The certificate authority the pump trusts for an `https://` server,
    /// DER (empty over `http://`).
    pub server_ca: Vec<u8, CA_MAX>,
}

/// Bytes of the largest certificate authority kept (a P-256 or P-384
/// authority's certificate is about 400 to 700 bytes).
pub const CA_MAX: usize = 1024;

/// Bytes of the largest encoded setup.
pub const SETUP_MAX: usize = 1 + 5 + 32 + 64 + 96 + 64 + 128 + 4 + 2 + CA_MAX;

/// The layout's version, first byte of the save.
const LAYOUT: u8 = 1;

impl Setup {
    fn fields(&self) -> [&str; 5] {
        [
            &self.wifi_ssid,
            &self.wifi_password,
            &self.server,
            &self.username,
            &self.password,
        ]
    }

    /// Writes the save into `out` (at least [`SETUP_MAX`] bytes) and
    /// returns its length: the layout, each field's length and bytes,
    /// the poll interval, then the authority's length (two bytes) and
    /// bytes.
    pub fn encode(&self, out: &mut [u8; SETUP_MAX]) -> usize {
        out[0] = LAYOUT;
        let mut at = 1;
        for field in self.fields() {
            let bytes = field.as_bytes();
            // Each field holds at most 128 bytes: its length fits a byte.
            out[at] = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
            out[at + 1..at + 1 + bytes.len()].copy_from_slice(bytes);
            at += 1 + bytes.len();
        }
        out[at..at + 4].copy_from_slice(&self.poll_interval_ms.to_le_bytes());
        at += 4;
        let ca = &self.server_ca;
        // At most CA_MAX bytes: the length fits two.
        out[at..at + 2].copy_from_slice(&u16::try_from(ca.len()).unwrap_or(0).to_le_bytes());
        out[at + 2..at + 2 + ca.len()].copy_from_slice(ca);
        at + 2 + ca.len()
    }

    /// The inverse of [`Self::encode`]; `None` for anything else.
    pub fn decode(b: &[u8]) -> Option<Setup> {
        if b.first() != Some(&LAYOUT) {
            return None;
        }
        let mut at = 1;
        let mut next = || -> Option<&str> {
            let len = usize::from(*b.get(at)?);
            let s = core::str::from_utf8(b.get(at + 1..at + 1 + len)?).ok()?;
            at += 1 + len;
            Some(s)
        };
        let mut setup = Setup {
            wifi_ssid: String::try_from(next()?).ok()?,
            wifi_password: String::try_from(next()?).ok()?,
            server: String::try_from(next()?).ok()?,
            username: String::try_from(next()?).ok()?,
            password: String::try_from(next()?).ok()?,
            poll_interval_ms: 0,
            server_ca: Vec::new(),
        };
        let poll: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        setup.poll_interval_ms = u32::from_le_bytes(poll);
        let len: [u8; 2] = b.get(at + 4..at + 6)?.try_into().ok()?;
        let len = usize::from(u16::from_le_bytes(len));
        if b.len() != at + 6 + len {
            return None;
        }
        setup.server_ca = Vec::from_slice(&b[at + 6..]).ok()?;
        Some(setup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_reads_back_whole_and_a_cut_one_does_not() {
        let s = Setup {
            wifi_ssid: String::try_from("Ward 4 — pumps").unwrap(),
            wifi_password: String::try_from("correct horse").unwrap(),
            server: String::try_from("http://10.0.0.2:8080").unwrap(),
            username: String::try_from("alice").unwrap(),
            password: String::try_from("x".repeat(128).as_str()).unwrap(),
            poll_interval_ms: 2_000,
            server_ca: Vec::from_slice(&[0x30; 700]).unwrap(),
        };
        let mut buf = [0u8; SETUP_MAX];
        let n = s.encode(&mut buf);
        assert_eq!(Setup::decode(&buf[..n]), Some(s));
        for cut in 0..n {
            assert_eq!(Setup::decode(&buf[..cut]), None);
        }
    }
}
