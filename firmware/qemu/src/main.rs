//! The pump's scenarios ([`infusion_pump_core::scenarios`]) and its
//! persistence layer's ([`infusion_pump_persist::scenarios`], the power
//! cut at every flash operation), the same functions `cargo test` runs on
//! the host, executing on an emulated Cortex-M4: each prints `ok` or `FAIL` with its name, then the last line
//! is `N passed, M failed`, and the exit status (through semihosting) is
//! non-zero on a failure, so that `cargo run` fails with it.
//!
//! It also measures what the scenarios needed: the static RAM of the image
//! and the stack's high-water mark, found by painting the free RAM below
//! the stack before the run and looking for the deepest word overwritten.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

/// The pattern painted over free RAM.
const PAINT: u32 = 0xA5A5_5A5A;

/// Left unpainted just below the stack pointer when painting: the
/// painting's own frame.
const MARGIN: usize = 256;

unsafe extern "C" {
    /// The end of `.data` and `.bss` (cortex-m-rt's `link.x`).
    static mut __sheap: u32;
    /// The start of RAM.
    static mut __sdata: u32;
    /// The top of the stack.
    static mut _stack_start: u32;
}

/// The bounds of the free RAM between the statics and the stack top.
fn free_ram() -> (usize, usize) {
    let low = &raw const __sheap as usize;
    let top = &raw const _stack_start as usize;
    (low, top)
}

/// Paints the free RAM below the current stack pointer.
fn paint() {
    let (low, _) = free_ram();
    let sp = cortex_m::register::msp::read() as usize;
    let mut at = low;
    while at + 4 <= sp.saturating_sub(MARGIN) {
        // SAFETY: [low, sp - MARGIN) is RAM no static and no live frame
        // uses: above the statics and below this function's own frame.
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// The deepest the stack reached: its top minus the lowest painted word
/// that was overwritten.
fn stack_used() -> usize {
    let (low, top) = free_ram();
    let mut at = low;
    // SAFETY: reading RAM between the statics and the stack top.
    while at < top && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    top - at
}

#[entry]
fn main() -> ! {
    paint();
    hprintln!("pump scenarios on an emulated Cortex-M4 (QEMU mps2-an386)");
    let print = |name: &str, outcome: Result<(), &'static str>| match outcome {
        Ok(()) => hprintln!("ok   {}", name),
        Err(why) => hprintln!("FAIL {}: {}", name, why),
    };
    let (pump_passed, pump_failed) = infusion_pump_core::scenarios::run_all(print);
    hprintln!("persistence over a RAM flash, the power cut at every write:");
    let (kept_passed, kept_failed) = infusion_pump_persist::scenarios::run_all(print);
    let (passed, failed) = (pump_passed + kept_passed, pump_failed + kept_failed);
    let statics = free_ram().0 - (&raw const __sdata as usize);
    hprintln!(
        "static RAM {} bytes; stack high-water mark {} bytes",
        statics,
        stack_used()
    );
    hprintln!("{} passed, {} failed", passed, failed);
    debug::exit(if failed == 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    hprintln!("0 passed, 1 failed");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
