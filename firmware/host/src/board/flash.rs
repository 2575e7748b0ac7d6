//! The flash, as an image file.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::FileExt;
use std::path::Path;

use embedded_storage_async::nor_flash::{
    ErrorType as FlashErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Bytes of the flash image: sixteen 4 KiB pages, as on the ESP32-C3's
/// partition for it.
pub const FLASH_BYTES: u32 = 16 * 4096;

/// NOR flash in a file: erased to `0xFF`, a write only clears bits, and
/// every operation reaches the file before it returns, so a process
/// killed at any point leaves what a power cut leaves.
pub struct FileFlash {
    file: File,
    image: Vec<u8>,
}

impl FileFlash {
    /// Opens the image at `path`, creating an erased one if there is none.
    pub fn open(path: &Path) -> std::io::Result<FileFlash> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut image = Vec::new();
        file.read_to_end(&mut image)?;
        if image.len() != FLASH_BYTES as usize {
            image = vec![0xFF; FLASH_BYTES as usize];
            file.write_all_at(&image, 0)?;
            file.set_len(u64::from(FLASH_BYTES))?;
        }
        Ok(FileFlash { file, image })
    }

    fn check(&self, offset: u32, len: usize) -> Result<usize, FlashError> {
        let start = offset as usize;
        if start + len > self.image.len() {
            return Err(FlashError::OutOfBounds);
        }
        Ok(start)
    }
}

/// A flash operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashError {
    /// Outside the image or misaligned.
    OutOfBounds,
    /// The file could not be written.
    Io,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::Io => NorFlashErrorKind::Other,
        }
    }
}

impl FlashErrorType for FileFlash {
    type Error = FlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let start = self.check(offset, bytes.len())?;
        bytes.copy_from_slice(&self.image[start..start + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.image.len()
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let start = self.check(from, to.saturating_sub(from) as usize)?;
        let end = to as usize;
        if !start.is_multiple_of(Self::ERASE_SIZE) || !end.is_multiple_of(Self::ERASE_SIZE) {
            return Err(FlashError::OutOfBounds);
        }
        self.image[start..end].fill(0xFF);
        self.file
            .write_all_at(&self.image[start..end], u64::from(from))
            .map_err(|_| FlashError::Io)
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let start = self.check(offset, bytes.len())?;
        if !start.is_multiple_of(Self::WRITE_SIZE) || !bytes.len().is_multiple_of(Self::WRITE_SIZE)
        {
            return Err(FlashError::OutOfBounds);
        }
        for (cell, b) in self.image[start..start + bytes.len()].iter_mut().zip(bytes) {
            *cell &= *b;
        }
        self.file
            .write_all_at(&self.image[start..start + bytes.len()], u64::from(offset))
            .map_err(|_| FlashError::Io)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// The file flash never waits: each poll finishes its operation.
    fn done<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => unreachable!("the file flash never waits"),
        }
    }

    #[test]
    fn the_image_file_behaves_as_nor_flash_and_keeps_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pump.img");
        let mut flash = FileFlash::open(&path).unwrap();
        let mut b = [0u8; 4];
        done(flash.read(4096, &mut b)).unwrap();
        assert_eq!(b, [0xFF; 4], "a new image is erased");
        done(flash.write(4096, &[0xF0, 0x0F, 0xAA, 0x55])).unwrap();
        // A write only clears bits, as NOR flash does.
        done(flash.write(4096, &[0x3C, 0xFF, 0xFF, 0xFF])).unwrap();
        assert_eq!(
            done(flash.write(4097, &[0; 4])),
            Err(FlashError::OutOfBounds),
            "misaligned"
        );
        assert_eq!(
            done(flash.erase(0, 100)),
            Err(FlashError::OutOfBounds),
            "not a page"
        );
        assert_eq!(
            done(flash.write(FLASH_BYTES, &[0; 4])),
            Err(FlashError::OutOfBounds)
        );
        drop(flash);
        // What was written is in the file: the next boot reads it.
        let mut flash = FileFlash::open(&path).unwrap();
        done(flash.read(4096, &mut b)).unwrap();
        assert_eq!(b, [0x30, 0x0F, 0xAA, 0x55]);
        done(flash.erase(4096, 8192)).unwrap();
        done(flash.read(4096, &mut b)).unwrap();
        assert_eq!(b, [0xFF; 4]);
    }
}
