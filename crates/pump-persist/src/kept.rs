//! The running state a pump saves while it works.

/// What is kept while the pump runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// The number of the next event the pump reports.
    pub next_seq: u32,
    /// The newest order version the pump applied.
    pub applied_version: u32,
    /// Where that order stood, while it had not completed.
    pub open: Option<OpenOrder>,
    /// The device secret issued when the pump was bound.
    pub device_secret: [u8; 32],
    /// The server's public index key the pump trusts.
    pub server_key: [u8; 32],
}

/// The progress of an order that has not completed, in microsteps of the
/// drive. The firmware saves these before the motor reaches them, so what
/// a reboot reads is never less than what was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOrder {
    /// Microsteps the order has given.
    pub delivered_steps: u64,
    /// Microsteps since the syringe was loaded.
    pub plunger_steps: u64,
}

/// The layout's version, first byte of every save: a later firmware can
/// read what an earlier one wrote. (Layout 1, with the delivered volume
/// in µL, never left the test bench: a µL rounds steps away.)
const LAYOUT: u8 = 2;

/// Bytes of one save.
pub const KEPT_LEN: usize = 1 + 4 + 4 + 1 + 8 + 8 + 32 + 32;

impl Kept {
    /// The save's bytes: the layout, then little-endian fields.
    pub fn encode(&self) -> [u8; KEPT_LEN] {
        let mut b = [0u8; KEPT_LEN];
        b[0] = LAYOUT;
        b[1..5].copy_from_slice(&self.next_seq.to_le_bytes());
        b[5..9].copy_from_slice(&self.applied_version.to_le_bytes());
        if let Some(open) = self.open {
            b[9] = 1;
            b[10..18].copy_from_slice(&open.delivered_steps.to_le_bytes());
            b[18..26].copy_from_slice(&open.plunger_steps.to_le_bytes());
        }
        b[26..58].copy_from_slice(&self.device_secret);
        b[58..90].copy_from_slice(&self.server_key);
        b
    }

    /// The inverse of [`Self::encode`]; `None` for another layout or
    /// length.
    pub fn decode(b: &[u8]) -> Option<Kept> {
        if b.len() != KEPT_LEN || b[0] != LAYOUT || b[9] > 1 {
            return None;
        }
        let mut w4 = [0u8; 4];
        let mut w8 = [0u8; 8];
        let mut word = |at: usize| {
            w4.copy_from_slice(&b[at..at + 4]);
            u32::from_le_bytes(w4)
        };
        let (next_seq, applied_version) = (word(1), word(5));
        let mut long = |at: usize| {
            w8.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w8)
        };
        let open = (b[9] == 1).then(|| OpenOrder {
            delivered_steps: long(10),
            plunger_steps: long(18),
        });
        let mut device_secret = [0u8; 32];
        device_secret.copy_from_slice(&b[26..58]);
        let mut server_key = [0u8; 32];
        server_key.copy_from_slice(&b[58..90]);
        Some(Kept {
            next_seq,
            applied_version,
            open,
            device_secret,
            server_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_reads_back_and_nothing_else_does() {
        let k = Kept {
            next_seq: 0x0102_0304,
            applied_version: 9,
            open: Some(OpenOrder {
                delivered_steps: 1 << 40,
                plunger_steps: 77,
            }),
            device_secret: [3; 32],
            server_key: [4; 32],
        };
        assert_eq!(Kept::decode(&k.encode()), Some(k));
        let closed = Kept { open: None, ..k };
        assert_eq!(Kept::decode(&closed.encode()), Some(closed));
        let mut other = k.encode();
        other[0] = 1;
        assert_eq!(Kept::decode(&other), None, "another layout");
        assert_eq!(Kept::decode(&k.encode()[..KEPT_LEN - 1]), None);
    }
}
