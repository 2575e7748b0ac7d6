//! The console: standard input and output.

use std::io::{Read as _, Write as _};

/// The console: standard input and output. Reading blocks the executor,
/// which is only done while provisioning, before the pump's loops start.
pub struct Console;

impl embedded_io_async::ErrorType for Console {
    type Error = std::io::Error;
}

impl embedded_io_async::Read for Console {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, std::io::Error> {
        std::io::stdin().read(buf)
    }
}

impl embedded_io_async::Write for Console {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, std::io::Error> {
        std::io::stdout().write(buf)
    }
    async fn flush(&mut self) -> Result<(), std::io::Error> {
        std::io::stdout().flush()
    }
}
