//! What a pump must keep across a reboot, so that a restarted pump resumes
//! safely by itself: the next event number (the server drops nothing it
//! has not seen and stores nothing twice), the newest order version it
//! applied (it never runs that order again), the volume the running order
//! has delivered, its device secret and the server's key. Kept in flash
//! with `sequential-storage`'s map: wear-levelled over its pages, each
//! save one CRC-protected item, so that a power cut in the middle of a
//! save leaves the previous save or this one, never a mixture.
//!
//! `#![no_std]`, no heap; the flash is any `embedded-storage-async`
//! [`NorFlash`] (the ESP32-C3's own, through esp-storage; a RAM image on
//! the host and under QEMU).
#![no_std]

#[cfg(test)]
extern crate std;

use core::ops::Range;

use embedded_storage_async::nor_flash::NorFlash;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};

#[cfg(any(test, feature = "scenarios"))]
pub mod ram;
#[cfg(any(test, feature = "scenarios"))]
pub mod scenarios;

/// What is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// The number of the next event the pump reports.
    pub next_seq: u32,
    /// The newest order version the pump applied.
    pub applied_version: u32,
    /// What the running order has delivered, µL.
    pub delivered_ul: u32,
    /// The device secret issued when the pump was bound.
    pub device_secret: [u8; 32],
    /// The server's public index key the pump trusts.
    pub server_key: [u8; 32],
}

/// The layout's version, first byte of every save: a later firmware can
/// read what an earlier one wrote.
const LAYOUT: u8 = 1;

/// Bytes of one save.
pub const KEPT_LEN: usize = 1 + 3 * 4 + 32 + 32;

impl Kept {
    /// The save's bytes: the layout, then little-endian fields.
    pub fn encode(&self) -> [u8; KEPT_LEN] {
        let mut b = [0u8; KEPT_LEN];
        b[0] = LAYOUT;
        b[1..5].copy_from_slice(&self.next_seq.to_le_bytes());
        b[5..9].copy_from_slice(&self.applied_version.to_le_bytes());
        b[9..13].copy_from_slice(&self.delivered_ul.to_le_bytes());
        b[13..45].copy_from_slice(&self.device_secret);
        b[45..77].copy_from_slice(&self.server_key);
        b
    }

    /// The inverse of [`Self::encode`]; `None` for another layout or
    /// length.
    pub fn decode(b: &[u8]) -> Option<Kept> {
        if b.len() != KEPT_LEN || b[0] != LAYOUT {
            return None;
        }
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut device_secret = [0u8; 32];
        device_secret.copy_from_slice(&b[13..45]);
        let mut server_key = [0u8; 32];
        server_key.copy_from_slice(&b[45..77]);
        Some(Kept {
            next_seq: word(1),
            applied_version: word(5),
            delivered_ul: word(9),
            device_secret,
            server_key,
        })
    }
}

/// Why the flash could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistError {
    /// The flash itself failed (a power cut, a bus error).
    Flash,
    /// Its content is corrupt beyond repair: it must be provisioned again.
    Corrupted,
    /// A save that is not ours, or of a layout this firmware does not read.
    Unreadable,
    /// The flash range is too small or not on page boundaries.
    BadRange,
}

impl<E> From<sequential_storage::Error<E>> for PersistError {
    fn from(e: sequential_storage::Error<E>) -> Self {
        match e {
            sequential_storage::Error::Storage { .. } => PersistError::Flash,
            _ => PersistError::Corrupted,
        }
    }
}

/// The one key the save is kept under.
const KEY: u8 = 1;

/// The pump's flash store over `range` of flash `S`.
pub struct Persist<S: NorFlash> {
    // Uncached: a pump saves a few times a minute, and the worst case of
    // every operation is what counts (the crate's advice).
    map: MapStorage<u8, S, Cache<Uncached, Uncached, Uncached, u8>>,
    buf: [u8; 128],
}

impl<S: NorFlash> Persist<S> {
    /// The store over `range` of `flash` (at least two erase pages, on
    /// page boundaries).
    pub fn new(flash: S, range: Range<u32>) -> Result<Self, PersistError> {
        let config = MapConfig::try_new(range).map_err(|_| PersistError::BadRange)?;
        Ok(Persist {
            map: MapStorage::new(flash, config, Cache::new_uncached()),
            buf: [0; 128],
        })
    }

    /// The newest save, if any.
    pub async fn load(&mut self) -> Result<Option<Kept>, PersistError> {
        let found: Option<&[u8]> = self.map.fetch_item(&mut self.buf, &KEY).await?;
        match found {
            None => Ok(None),
            Some(b) => Kept::decode(b).map(Some).ok_or(PersistError::Unreadable),
        }
    }

    /// Saves `k`: after it returns `Ok`, a reboot loads `k`; if the power
    /// is cut before, a reboot loads `k` or the save before it.
    pub async fn save(&mut self, k: &Kept) -> Result<(), PersistError> {
        let bytes = k.encode();
        self.map
            .store_item(&mut self.buf, &KEY, &&bytes[..])
            .await?;
        Ok(())
    }

    /// The flash, given back.
    pub fn into_flash(self) -> S {
        self.map.destroy().0
    }
}
