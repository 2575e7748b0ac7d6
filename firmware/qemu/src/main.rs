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
    match step_cost() {
        Some(c) => hprintln!(
            "motor loop at 200 mL/h: {} steps, {} instructions per step on average, {} at most \
             (calibration: {} instructions counted for {} executed)",
            c.steps,
            c.mean,
            c.max,
            c.calibration.0,
            c.calibration.1
        ),
        None => hprintln!("motor loop not measured"),
    }
    match longest_sections() {
        Some((index, proof)) => hprintln!(
            "longest work between two awaits: taking a signed index {} instructions, \
             signing a login proof {} instructions",
            index,
            proof
        ),
        None => hprintln!("index and login not measured"),
    }
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

/// What the motor loop costs per step.
struct StepCost {
    steps: u32,
    mean: u32,
    max: u32,
    /// (instructions counted, instructions executed) of a known loop.
    calibration: (u32, u32),
}

/// Instructions per SysTick tick: QEMU runs with `-icount shift=0` (one
/// instruction per virtual nanosecond) and the board's SysTick counts the
/// 25 MHz system clock on the same virtual clock: 40 ns a tick.
const INSNS_PER_TICK: u32 = 40;

/// Instructions from `before` to `after` of SysTick (a 24-bit down
/// counter).
fn insns(before: u32, after: u32) -> u32 {
    (before.wrapping_sub(after) & 0x00FF_FFFF) * INSNS_PER_TICK
}

/// Exactly `2 * n + 1` instructions: `n` rounds of `subs`, `bne`, and a
/// `mov` to start.
fn known_loop(n: u32) {
    // SAFETY: touches one scratch register it declares, no memory.
    unsafe {
        core::arch::asm!(
            "mov {r}, {n}",
            "1:",
            "subs {r}, {r}, #1",
            "bne 1b",
            n = in(reg) n,
            r = out(reg) _,
            options(nomem, nostack),
        );
    }
}

/// Runs the motor loop of a pump at 200 mL/h (about 3,000 microsteps a
/// second on the paper's drive) for 30,000 steps, counting the
/// instructions of each step's work: taking the steps due and finding
/// when the next is due.
fn step_cost() -> Option<StepCost> {
    use cortex_m::peripheral::SYST;
    use cortex_m::peripheral::syst::SystClkSource;
    let mut syst = cortex_m::Peripherals::take()?.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00FF_FFFF);
    syst.clear_current();
    syst.enable_counter();
    let before = SYST::get_current();
    known_loop(10_000);
    let calibration = (insns(before, SYST::get_current()), 20_001);
    let mut p = infusion_pump_core::scenarios::running_at(200_000).ok()?;
    let mut at = p.next_step_at_us()?;
    let (mut steps, mut total, mut max) = (0u32, 0u64, 0u32);
    while steps < 30_000 {
        let before = SYST::get_current();
        let taken = p.take_steps(at);
        let next = p.next_step_at_us();
        let cost = insns(before, SYST::get_current());
        if taken > 0 {
            steps += u32::try_from(taken).unwrap_or(u32::MAX);
            total += u64::from(cost);
            max = max.max(cost);
        }
        at = next?.max(at + 1);
    }
    Some(StepCost {
        steps,
        mean: u32::try_from(total / u64::from(steps)).unwrap_or(u32::MAX),
        max,
        calibration,
    })
}

/// The longest work the firmware does without yielding, which holds the
/// motor from its next step: taking a signed index answer (the Ed25519
/// check) and signing a login proof, in instructions.
fn longest_sections() -> Option<(u32, u32)> {
    use cortex_m::peripheral::SYST;
    use infusion_protocol::{DeviceSecret, HexBytes, MacAddress};
    use infusion_pump_core::Request;
    let mut p = infusion_pump_core::scenarios::running_at(200_000).ok()?;
    let answer = infusion_pump_core::scenarios::signed_index(2, 100_000);
    // Reports answered, until the pump asks for its index.
    let mut at = 0;
    loop {
        match p.poll_request(at) {
            Some(Request::Index { .. }) => break,
            Some(Request::Report { .. }) => {
                let ok = infusion_protocol::ReportResponse {
                    accepted: 1,
                    duplicates: 0,
                    token: infusion_protocol::Token::parse(
                        "ccccccccccccccccccccccccccccccccccccccccccc",
                    )
                    .ok()?,
                    expires_in_s: 300,
                };
                p.handle_report(at, Ok(&ok))
            }
            Some(Request::Login) => return None,
            None => at = p.poll_timeout().max(at + 1),
        }
        if at > 3_600_000 {
            return None;
        }
    }
    let before = SYST::get_current();
    p.handle_index(at, Ok(&answer));
    let index = insns(before, SYST::get_current());
    if p.infusion().current_rate_ul_h() != 100_000 {
        return None;
    }
    let secret = DeviceSecret::from_bytes(&[7; 32]);
    let nonce = HexBytes([9; 32]);
    let before = SYST::get_current();
    let proof = secret.prove(&nonce, "alice", MacAddress([2, 0, 0, 0, 0, 1]));
    let sign = insns(before, SYST::get_current());
    core::hint::black_box(proof);
    Some((index, sign))
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
