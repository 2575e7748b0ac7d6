//! A RAM-backed NOR flash that behaves as one (erase to `0xFF`, writes only
//! clear bits) and can lose its power in the middle of an operation: the
//! test bench of the persistence layer, on the host and under QEMU.

use embedded_storage_async::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Bytes of one erase page (the ESP32-C3's flash erases 4 KiB; smaller
/// pages make more page changes in a short test, and the largest item,
/// a provisioning with its certificate authority, still fits one).
pub const PAGE: usize = 2048;

/// Pages of the RAM flash.
pub const PAGES: usize = 4;

/// What a flash operation met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamError {
    /// The power went: the operation was half done, and nothing more is.
    PowerCut,
    /// Out of range or misaligned: a bug of the caller.
    Bad,
}

impl NorFlashError for RamError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            RamError::PowerCut => NorFlashErrorKind::Other,
            RamError::Bad => NorFlashErrorKind::OutOfBounds,
        }
    }
}

/// The flash.
pub struct RamFlash {
    /// Its content.
    pub bytes: [u8; PAGE * PAGES],
    /// Writes and erases left before the power goes (`None`: it stays).
    pub cut_after: Option<u32>,
    /// The power has gone: every operation fails until [`Self::power_on`].
    pub dead: bool,
    /// Writes and erases done so far.
    pub operations: u32,
}

impl RamFlash {
    /// Erased flash with power.
    pub fn new() -> RamFlash {
        RamFlash {
            bytes: [0xFF; PAGE * PAGES],
            cut_after: None,
            dead: false,
            operations: 0,
        }
    }

    /// The power comes back (a reboot): what was written stays.
    pub fn power_on(&mut self) {
        self.dead = false;
        self.cut_after = None;
    }

    /// Counts an operation; `true` when the power goes during it.
    fn cut_now(&mut self) -> Result<bool, RamError> {
        if self.dead {
            return Err(RamError::PowerCut);
        }
        self.operations += 1;
        Ok(match self.cut_after.as_mut() {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        })
    }

    fn range(&self, from: u32, len: usize) -> Result<core::ops::Range<usize>, RamError> {
        let from = from as usize;
        let to = from.checked_add(len).ok_or(RamError::Bad)?;
        if to > self.bytes.len() {
            return Err(RamError::Bad);
        }
        Ok(from..to)
    }
}

impl Default for RamFlash {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorType for RamFlash {
    type Error = RamError;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), RamError> {
        if self.dead {
            return Err(RamError::PowerCut);
        }
        let r = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.bytes[r]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), RamError> {
        let r = self.range(from, to.saturating_sub(from) as usize)?;
        if !r.start.is_multiple_of(PAGE) || !r.end.is_multiple_of(PAGE) {
            return Err(RamError::Bad);
        }
        if self.cut_now()? {
            // Half the range erased, then nothing.
            let half = r.start + (r.end - r.start) / 2;
            self.bytes[r.start..half].fill(0xFF);
            self.dead = true;
            return Err(RamError::PowerCut);
        }
        self.bytes[r].fill(0xFF);
        Ok(())
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), RamError> {
        let r = self.range(offset, data.len())?;
        if !r.start.is_multiple_of(4) || !data.len().is_multiple_of(4) {
            return Err(RamError::Bad);
        }
        let torn = self.cut_now()?;
        // NOR flash: a write only clears bits.
        let done = if torn { data.len() / 2 } else { data.len() };
        for (cell, byte) in self.bytes[r].iter_mut().zip(data).take(done) {
            *cell &= *byte;
        }
        if torn {
            self.dead = true;
            return Err(RamError::PowerCut);
        }
        Ok(())
    }
}
