//! The persistence layer's scenarios, written once for the host and the
//! emulated microcontroller: saves survive reboots, and the power cut at
//! every single flash operation of a run of saves leaves, after the
//! reboot, the last save that returned `Ok` or the one being made, and a
//! store that goes on saving.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use crate::ram::{PAGE, PAGES, RamFlash};
use crate::{Kept, OpenOrder, Persist, Setup};

/// A scenario's outcome: `Err` says what went wrong.
pub type Outcome = Result<(), &'static str>;

/// A scenario: its name and its function.
pub type Scenario = (&'static str, fn() -> Outcome);

/// Every scenario, by name.
pub const ALL: &[Scenario] = &[
    ("a save survives a reboot", save_and_reboot),
    (
        "saves wear across every page and the newest wins",
        many_saves,
    ),
    (
        "a power cut at any flash operation loses at most the save in flight",
        power_cuts,
    ),
    (
        "the provisioning stays through many saves, until erased",
        setup_kept,
    ),
];

/// Runs every scenario; (passed, failed), calling `report` with each
/// name and outcome.
pub fn run_all(mut report: impl FnMut(&str, Outcome)) -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in ALL {
        let outcome = scenario();
        if outcome.is_ok() {
            passed += 1;
        } else {
            failed += 1;
        }
        report(name, outcome);
    }
    (passed, failed)
}

/// Polls `f` to its end: the RAM flash never waits, so each poll makes
/// progress.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn check(ok: bool, why: &'static str) -> Outcome {
    if ok { Ok(()) } else { Err(why) }
}

/// The `n`-th save of a running pump.
fn kept(n: u32) -> Kept {
    Kept {
        next_seq: 100 + n,
        applied_version: 3 + n / 10,
        open: (!n.is_multiple_of(7)).then_some(OpenOrder {
            delivered_steps: u64::from(n) * 37_000,
            plunger_steps: u64::from(n) * 40_000,
        }),
        device_secret: [0x11; 32],
        server_key: [0x22; 32],
    }
}

fn open(flash: RamFlash) -> Result<Persist<RamFlash>, &'static str> {
    Persist::new(flash, 0..(PAGE * PAGES) as u32).map_err(|_| "a flash range of whole pages")
}

fn save_and_reboot() -> Outcome {
    let mut p = open(RamFlash::new())?;
    check(
        block_on(p.load()) == Ok(None),
        "a new pump has nothing kept",
    )?;
    block_on(p.save(&kept(1))).map_err(|_| "the save")?;
    let mut p = open(p.into_flash())?;
    check(
        block_on(p.load()) == Ok(Some(kept(1))),
        "the save is there after a reboot",
    )
}

/// How many saves the runs make: enough to fill every page several times.
const SAVES: u32 = 100;

fn many_saves() -> Outcome {
    let mut p = open(RamFlash::new())?;
    for n in 0..SAVES {
        block_on(p.save(&kept(n))).map_err(|_| "a save")?;
    }
    check(
        block_on(p.load()) == Ok(Some(kept(SAVES - 1))),
        "the newest save wins",
    )
}

fn power_cuts() -> Outcome {
    // The run without a cut: how many flash operations it makes.
    let mut p = open(RamFlash::new())?;
    for n in 0..SAVES {
        block_on(p.save(&kept(n))).map_err(|_| "a save")?;
    }
    let total = p.into_flash().operations;
    check(total >= SAVES, "every save writes")?;
    for cut in 0..total {
        let mut flash = RamFlash::new();
        flash.cut_after = Some(cut);
        let mut p = open(flash)?;
        let mut last_ok = None;
        let mut in_flight = None;
        for n in 0..SAVES {
            match block_on(p.save(&kept(n))) {
                Ok(()) => last_ok = Some(n),
                Err(_) => {
                    in_flight = Some(n);
                    break;
                }
            }
        }
        check(in_flight.is_some(), "the power went during the run")?;
        // The reboot.
        let mut flash = p.into_flash();
        flash.power_on();
        let mut p = open(flash)?;
        let found = block_on(p.load()).map_err(|_| "the store reads after a power cut")?;
        let good = found == last_ok.map(kept) || found == in_flight.map(kept);
        check(
            good,
            "after the cut: the last save made, or the one in flight",
        )?;
        // And it goes on.
        block_on(p.save(&kept(SAVES))).map_err(|_| "a save after the reboot")?;
        check(
            block_on(p.load()) == Ok(Some(kept(SAVES))),
            "a save after the reboot is kept",
        )?;
    }
    Ok(())
}

fn setup() -> Setup {
    let mut s = Setup {
        poll_interval_ms: 2_000,
        ..Setup::default()
    };
    // The longest there can be: the worst case for the pages.
    for _ in 0..32 {
        let _ = s.wifi_ssid.push('s');
    }
    for _ in 0..64 {
        let _ = s.wifi_password.push('w');
    }
    for _ in 0..96 {
        let _ = s.server.push('h');
    }
    for _ in 0..64 {
        let _ = s.username.push('u');
    }
    for _ in 0..128 {
        let _ = s.password.push('p');
    }
    for _ in 0..crate::CA_MAX {
        let _ = s.server_ca.push(0x30);
    }
    s
}

fn setup_kept() -> Outcome {
    let mut p = open(RamFlash::new())?;
    check(
        block_on(p.load_setup()) == Ok(None),
        "a new pump is not provisioned",
    )?;
    block_on(p.save_setup(&setup())).map_err(|_| "the provisioning is saved")?;
    for n in 0..SAVES {
        block_on(p.save(&kept(n))).map_err(|_| "a save beside the provisioning")?;
    }
    let mut p = open(p.into_flash())?;
    check(
        block_on(p.load_setup()) == Ok(Some(setup())),
        "the provisioning is there after many saves and a reboot",
    )?;
    check(
        block_on(p.load()) == Ok(Some(kept(SAVES - 1))),
        "and the newest save",
    )?;
    block_on(p.erase_all()).map_err(|_| "the erase")?;
    let mut p = open(p.into_flash())?;
    check(
        block_on(p.load_setup()) == Ok(None) && block_on(p.load()) == Ok(None),
        "an erased pump boots as a new one",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_scenario_passes_on_the_host() {
        let (passed, failed) = super::run_all(|name, outcome| {
            if let Err(why) = outcome {
                std::eprintln!("FAILED {name}: {why}");
            }
        });
        assert_eq!((passed, failed), (super::ALL.len() as u32, 0));
    }
}
