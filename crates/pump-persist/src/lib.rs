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

mod kept;
#[cfg(any(test, feature = "scenarios"))]
pub mod ram;
#[cfg(any(test, feature = "scenarios"))]
pub mod scenarios;
mod setup;

pub use kept::{KEPT_LEN, Kept, OpenOrder};
pub use setup::{CA_MAX, SETUP_MAX, Setup};

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

/// The key the running state ([`Kept`]) is saved under.
const KEY: u8 = 1;
/// The key the provisioning ([`Setup`]) is saved under.
const SETUP_KEY: u8 = 2;

/// The largest item and its map header.
const BUF: usize = SETUP_MAX + 32;

/// The pump's flash store over `range` of flash `S`.
pub struct Persist<S: NorFlash> {
    // Uncached: a pump saves a few times a minute, and the worst case of
    // every operation is what counts (the crate's advice).
    map: MapStorage<u8, S, Cache<Uncached, Uncached, Uncached, u8>>,
    buf: [u8; BUF],
}

impl<S: NorFlash> Persist<S> {
    /// The store over `range` of `flash` (at least two erase pages, on
    /// page boundaries).
    pub fn new(flash: S, range: Range<u32>) -> Result<Self, PersistError> {
        let config = MapConfig::try_new(range).map_err(|_| PersistError::BadRange)?;
        Ok(Persist {
            map: MapStorage::new(flash, config, Cache::new_uncached()),
            buf: [0; BUF],
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

    /// The provisioning, if the pump was provisioned.
    pub async fn load_setup(&mut self) -> Result<Option<Setup>, PersistError> {
        let found: Option<&[u8]> = self.map.fetch_item(&mut self.buf, &SETUP_KEY).await?;
        match found {
            None => Ok(None),
            Some(b) => Setup::decode(b).map(Some).ok_or(PersistError::Unreadable),
        }
    }

    /// Saves the provisioning, with the same guarantee as [`Self::save`].
    pub async fn save_setup(&mut self, setup: &Setup) -> Result<(), PersistError> {
        let mut bytes = [0u8; SETUP_MAX];
        let n = setup.encode(&mut bytes);
        self.map
            .store_item(&mut self.buf, &SETUP_KEY, &&bytes[..n])
            .await?;
        Ok(())
    }

    /// Forgets everything kept (a pump being given to another patient, or
    /// provisioned again): the next boot is a first boot.
    pub async fn erase_all(&mut self) -> Result<(), PersistError> {
        self.map.erase_all().await?;
        Ok(())
    }

    /// The flash, given back.
    pub fn into_flash(self) -> S {
        self.map.destroy().0
    }
}
