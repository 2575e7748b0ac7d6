//! What a pump is provisioned with at its first boot: the Wi-Fi it joins,
//! the server it talks to and the account it logs in with. Typed in over
//! the serial console (never compiled into the image) and kept in flash
//! beside the running state.

use heapless::String;

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
}

/// Bytes of the largest encoded setup.
pub const SETUP_MAX: usize = 1 + 5 + 32 + 64 + 96 + 64 + 128 + 4;

/// The layout's version, first byte of the save.
const LAYOUT: u8 = 1;

/// Why a setup value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// Longer than its field holds.
    TooLong,
}

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
    /// then the poll interval.
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
        at + 4
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
        };
        let poll: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        if b.len() != at + 4 {
            return None;
        }
        setup.poll_interval_ms = u32::from_le_bytes(poll);
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
        };
        let mut buf = [0u8; SETUP_MAX];
        let n = s.encode(&mut buf);
        assert_eq!(Setup::decode(&buf[..n]), Some(s));
        for cut in 0..n {
            assert_eq!(Setup::decode(&buf[..cut]), None);
        }
    }
}
