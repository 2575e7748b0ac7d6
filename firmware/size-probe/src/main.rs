//! The pump firmware's logic as one bare-metal image: JSON in and out of
//! the device API (serde-json-core), the core (session, outbox, dose
//! schedule, state machine, alarms) and the DRV8834 edge. Inputs come
//! through `black_box`, so the optimiser keeps every path a device would
//! take. What it leaves out is the Wi-Fi and HTTP stack (esp-wifi and an
//! HTTP client), which belong to the board support, not to this project.
//!
//! Build: `cargo build --release --target riscv32imc-unknown-none-elf`,
//! then read the sizes of `.text` and `.rodata` (`.ci/run` prints them).
#![no_std]
#![no_main]

use core::convert::Infallible;
use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use infusion_protocol::{
    ChallengeResponse, DeviceSecret, HexBytes, IndexResponse, LoginRequest, LoginResponse,
    MacAddress, ReportRequestRef, ReportResponse,
};
use infusion_pump_core::drv8834::Drv8834;
use infusion_pump_core::{Failure, Microsteps, Pump, PumpConfig, Request, Sensors};

/// Stands in for the GPIO registers (load and store only: the ESP32-C3's
/// core has no atomic read-modify-write).
static GPIO: AtomicU32 = AtomicU32::new(0);

struct Pin(u32);

impl ErrorType for Pin {
    type Error = Infallible;
}

impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        GPIO.store(
            GPIO.load(Ordering::SeqCst) & !(1 << self.0),
            Ordering::SeqCst,
        );
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        GPIO.store(
            GPIO.load(Ordering::SeqCst) | (1 << self.0),
            Ordering::SeqCst,
        );
        Ok(())
    }
}

impl InputPin for Pin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(GPIO.load(Ordering::SeqCst) & (1 << self.0) != 0)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}

struct Delay;

impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        for _ in 0..ns / 100 {
            black_box(());
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

fn answer<T: serde::de::DeserializeOwned>(buf: &[u8]) -> Result<T, Failure> {
    serde_json_core::from_slice::<T>(buf)
        .map(|(v, _)| v)
        .map_err(|_| Failure::Network)
}

#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    // Provisioned at binding: the device secret (on a real pump, in the
    // flash's encrypted NVS) and the server's index key.
    let secret = DeviceSecret::from_bytes(black_box(&[7; 32]));
    let mac = MacAddress(black_box([2, 0, 0, 0, 0, 1]));
    let mut pump: Pump<64> = Pump::new(PumpConfig {
        mac,
        server_key: Some(HexBytes(black_box([9; 32]))),
        ..PumpConfig::default()
    });
    let mut delay = Delay;
    let Ok(mut motor) = Drv8834::new(Pin(0), Pin(1), Pin(2), Pin(3), Pin(4), Pin(5)) else {
        panic!("the GPIO pins are infallible");
    };
    let _ = motor.set_microsteps(Microsteps::X16, &mut delay);
    let _ = motor.wake(&mut delay);
    let mut rx = [0u8; 1024];
    let mut tx = [0u8; 8192];
    loop {
        let now_us = u64::from(GPIO.load(Ordering::SeqCst)) * black_box(1_000);
        let now_ms = now_us / 1_000;
        pump.sense(now_ms, black_box(Sensors::default()));
        for _ in 0..pump.take_steps(now_us) {
            let _ = motor.step(&mut delay);
        }
        let got = black_box(&mut rx);
        match pump.poll_request(now_ms) {
            Some(Request::Login) => {
                // POST /challenge, sign its nonce, POST /login.
                if let Ok(c) = answer::<ChallengeResponse>(got) {
                    let mut login = LoginRequest {
                        username: heapless::String::new(),
                        password: heapless::String::new(),
                        mac,
                        nonce: Some(c.nonce),
                        proof: None,
                    };
                    login.proof = Some(secret.prove(&c.nonce, &login.username, mac));
                    let _ = black_box(serde_json_core::to_slice(&login, &mut tx));
                }
                pump.handle_login(
                    now_ms,
                    answer::<LoginResponse>(got).as_ref().map_err(|e| *e),
                )
            }
            Some(Request::Index { .. }) => pump.handle_index(
                now_ms,
                answer::<IndexResponse>(got).as_ref().map_err(|e| *e),
            ),
            Some(Request::Report { patient_id, .. }) => {
                let body = ReportRequestRef {
                    patient_id,
                    events: pump.report_events(),
                };
                let _ = black_box(serde_json_core::to_slice(&body, &mut tx));
                pump.handle_report(
                    now_ms,
                    answer::<ReportResponse>(got).as_ref().map_err(|e| *e),
                );
            }
            None => {}
        }
        black_box(pump.poll_timeout());
        black_box(pump.next_step_at_us());
        if black_box(false) {
            let _ = pump.clear_alarm(now_ms);
        }
    }
}
