//! The chip's flash under the async NOR flash traits the persistence layer
//! takes. esp-storage is blocking: each operation completes before it
//! returns (a sector erase takes tens of ms, within the watchdog's 2 s).

use core::ops::Range;

use embedded_storage_async::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use esp_storage::{FlashStorage, FlashStorageError};

/// The `pump` data partition of `partitions.csv`.
pub const PUMP_PARTITION: Range<u32> = 0x3F_0000..0x40_0000;

/// The flash.
pub struct AsyncFlash(FlashStorage<'static>);

impl AsyncFlash {
    /// Takes the flash peripheral.
    pub fn new(flash: esp_hal::peripherals::FLASH<'static>) -> Self {
        AsyncFlash(FlashStorage::new(flash))
    }
}

impl ErrorType for AsyncFlash {
    type Error = FlashStorageError;
}

impl ReadNorFlash for AsyncFlash {
    const READ_SIZE: usize = FlashStorage::READ_SIZE;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl NorFlash for AsyncFlash {
    const WRITE_SIZE: usize = FlashStorage::WRITE_SIZE;
    const ERASE_SIZE: usize = FlashStorage::ERASE_SIZE;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0.erase(from, to)
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.write(offset, bytes)
    }
}
