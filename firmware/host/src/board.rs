//! The host's stand-ins for the pump's hardware.

use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_io::Async;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use embedded_io_adapters::futures_03::FromFutures;
use embedded_nal_async::{AddrType, Dns, TcpConnect};
use embedded_storage_async::nor_flash::{
    ErrorType as FlashErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use infusion_firmware_app::board::{Drive, JoinError};
use infusion_firmware_app::{Inputs, Network, Reading, Watchdog};
use infusion_protocol::MacAddress;
use infusion_pump_core::drv8834::Drv8834;
use infusion_pump_core::{Microsteps, Sensors};

/// The network: the host's own, already joined.
pub struct HostNet {
    mac: MacAddress,
    tcp: HostTcp,
    dns: HostDns,
}

impl HostNet {
    /// The host's network, for the pump with `mac`.
    pub fn new(mac: MacAddress) -> Self {
        HostNet {
            mac,
            tcp: HostTcp,
            dns: HostDns,
        }
    }
}

impl Network for HostNet {
    type Tcp = HostTcp;
    type Dns = HostDns;
    async fn join(&mut self, _ssid: &str, _password: &str) -> Result<(), JoinError> {
        Ok(())
    }
    fn sockets(&self) -> (&HostTcp, &HostDns) {
        (&self.tcp, &self.dns)
    }
    fn mac(&self) -> MacAddress {
        self.mac
    }
}

/// TCP through async-io.
pub struct HostTcp;

impl TcpConnect for HostTcp {
    type Error = std::io::Error;
    type Connection<'a> = FromFutures<Async<TcpStream>>;
    async fn connect<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Result<Self::Connection<'a>, Self::Error> {
        Ok(FromFutures::new(Async::<TcpStream>::connect(remote).await?))
    }
}

/// Names through the host's resolver (a pump's server is one name, looked
/// up once a connection).
pub struct HostDns;

impl Dns for HostDns {
    type Error = std::io::Error;
    async fn get_host_by_name(
        &self,
        host: &str,
        addr_type: AddrType,
    ) -> Result<IpAddr, Self::Error> {
        (host, 0)
            .to_socket_addrs()?
            .map(|a| a.ip())
            // `localhost` is IPv6 first on many hosts; a server on
            // 127.0.0.1 is the usual case, so IPv4 comes first.
            .find(|ip| match addr_type {
                AddrType::IPv4 | AddrType::Either => ip.is_ipv4(),
                AddrType::IPv6 => ip.is_ipv6(),
            })
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
    }
    async fn get_host_by_address(
        &self,
        _addr: IpAddr,
        _result: &mut [u8],
    ) -> Result<usize, Self::Error> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

/// The operating system's random numbers (the chip's hardware generator
/// on a board); the clock if they fail, which they do not on Linux.
pub fn random() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

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

/// One of the DRV8834's output pins. The steps pulsed are counted by the
/// application (`pulsed=` on the console).
#[derive(Default)]
pub struct Pin;

/// The DRV8834's nFAULT pin: low while the bench says the driver faults.
pub struct FaultPin(Arc<Bench>);

impl ErrorType for Pin {
    type Error = Infallible;
}

impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl ErrorType for FaultPin {
    type Error = Infallible;
}

impl InputPin for FaultPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0.read().driver_fault)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}

/// Pulse timing by spinning on the clock, as a microcontroller's
/// cycle-counted delay does (a sleep would take the thread away for far
/// longer than the DRV8834's 2 µs).
pub struct Spin;

impl DelayNs for Spin {
    fn delay_ns(&mut self, ns: u32) {
        let until = Instant::now() + Duration::from_nanos(u64::from(ns));
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

/// The motor edge of the host board.
pub type HostMotor = Drive<Drv8834<Pin, Pin, Pin, Pin, Pin, FaultPin>, Spin>;

/// The DRV8834 on host pins at 1/16 microsteps (the paper's drive), its
/// nFAULT read from `bench`.
pub fn motor(bench: Arc<Bench>) -> Option<HostMotor> {
    let mut driver = Drv8834::new(Pin, Pin, Pin, Pin, Pin, FaultPin(bench)).ok()?;
    driver.set_microsteps(Microsteps::X16, &mut Spin).ok()?;
    Some(Drive {
        driver,
        delay: Spin,
    })
}

/// The bench the host pump stands on: what its sensors and buttons read,
/// from a file a test (or a person) writes, `name=value` a line:
/// `stalled`, `over_current`, `driver_fault`, `end_of_travel` (0 or 1),
/// `battery_mv`, and `confirm` and `loaded`, counters whose every
/// increase is one press. Without a file, or for a name it lacks: all
/// clear on a full cell.
pub struct Bench {
    path: Option<PathBuf>,
}

/// One reading of the bench file.
#[derive(Debug, Clone, Copy, Default)]
pub struct BenchReading {
    sensors: Sensors,
    driver_fault: bool,
    confirm: u64,
    loaded: u64,
}

impl Bench {
    /// The bench read from `path`, if any.
    pub fn new(path: Option<PathBuf>) -> Arc<Bench> {
        Arc::new(Bench { path })
    }

    fn read(&self) -> BenchReading {
        let mut r = BenchReading::default();
        let Some(text) = self
            .path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        else {
            return r;
        };
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let Ok(n) = value.trim().parse::<u64>() else {
                continue;
            };
            match name.trim() {
                "stalled" => r.sensors.stalled = n != 0,
                "over_current" => r.sensors.over_current = n != 0,
                "driver_fault" => r.driver_fault = n != 0,
                "end_of_travel" => r.sensors.end_of_travel = n != 0,
                "battery_mv" => r.sensors.battery_mv = u16::try_from(n).unwrap_or(u16::MAX),
                "confirm" => r.confirm = n,
                "loaded" => r.loaded = n,
                _ => {}
            }
        }
        r
    }
}

/// The sensor inputs and buttons, read from the bench.
pub struct HostInputs {
    bench: Arc<Bench>,
    presses: (u64, u64),
}

impl HostInputs {
    /// The inputs on `bench`; presses counted from what it says now.
    pub fn new(bench: Arc<Bench>) -> Self {
        let r = bench.read();
        HostInputs {
            bench,
            presses: (r.confirm, r.loaded),
        }
    }
}

impl Inputs for HostInputs {
    fn read(&mut self) -> Reading {
        let r = self.bench.read();
        let reading = Reading {
            sensors: r.sensors,
            confirm: r.confirm > self.presses.0,
            syringe_loaded: r.loaded > self.presses.1,
        };
        self.presses = (r.confirm, r.loaded);
        reading
    }
}

/// The watchdog: a thread that ends the process, as the chip's watchdog
/// resets it, when the control loop has not fed it in time.
#[derive(Default)]
pub struct HostWatchdog {
    fed: Arc<AtomicU64>,
    started: Option<Instant>,
}

impl Watchdog for HostWatchdog {
    fn start(&mut self, timeout_ms: u32) {
        let epoch = Instant::now();
        self.started = Some(epoch);
        let fed = self.fed.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(50));
                let now = epoch.elapsed().as_millis() as u64;
                let last = fed.load(Ordering::Relaxed);
                if now.saturating_sub(last) > u64::from(timeout_ms) {
                    eprintln!(
                        "infusion-pump-host: watchdog: not fed for {} ms: reset",
                        now - last
                    );
                    std::process::exit(3);
                }
            }
        });
    }
    fn feed(&mut self) {
        if let Some(epoch) = self.started {
            self.fed
                .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    }
}

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
