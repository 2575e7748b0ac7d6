//! The keep loop: what a restart needs, saved to flash.
//!
//! Saved: the next event number, the newest order applied, and while that
//! order is open how far it has gone, as a count *ahead* of the motor: a
//! save reserves [`AHEAD_UL`] of the order, and the motor loop
//! waits for the next save before it passes the reserve. After a power
//! cut, the restarted pump takes the reserve as given, so it may give up
//! to that much less than the order, never more. A save is made every
//! half reserve while running (every 36 s at 1 mL/h), or when the order
//! changes, and the event counter is saved with any save, or within a
//! minute of its change (the server's login answer corrects a counter
//! that fell behind).

use embassy_futures::select::select;
use embassy_time::{Duration, Instant, Timer};
use embedded_storage_async::nor_flash::NorFlash;
use infusion_pump_core::{Phase, Pump};
use infusion_pump_persist::{Kept, OpenOrder, Persist};

use crate::OUTBOX;
use crate::shared::{Reserved, Shared};

/// How much volume a save reserves ahead of the motor, µL: the most a
/// power cut can take off an order (never past its total). A save comes
/// every half of it while running, so the flash wears with the volume
/// given, not with time: 100 saves a mL; at 100 mL a day, on 16 pages of
/// 4 KiB (about 640 saves a turn), 16 erases of each page a day, over
/// fifteen years of the flash's 100,000 cycles.
pub const AHEAD_UL: u32 = 20;

/// How long a changed event counter may wait for a save.
const SEQ_LAG: Duration = Duration::from_secs(60);

/// How often the loop looks when nobody wakes it.
const LOOK: Duration = Duration::from_secs(1);

/// Runs the keep loop. Never returns. `kept` is what the flash holds now.
pub async fn run<F: NorFlash, M>(
    persist: &mut Persist<F>,
    shared: &Shared<M>,
    mut kept: Kept,
) -> ! {
    let mut seq_changed: Option<Instant> = None;
    loop {
        select(Timer::after(LOOK), shared.keep_wake.wait()).await;
        let (want, reserved) = wanted(&shared.pump.borrow(), &kept, shared.reserved.get());
        if want.next_seq != kept.next_seq && seq_changed.is_none() {
            seq_changed = Some(Instant::now());
        }
        let order_moved = want.applied_version != kept.applied_version || want.open != kept.open;
        let seq_due = seq_changed.is_some_and(|at| at + SEQ_LAG <= Instant::now());
        if !order_moved && !seq_due {
            continue;
        }
        match persist.save(&want).await {
            Ok(()) => {
                kept = want;
                seq_changed = None;
                shared.reserved.set(reserved);
                shared.saved.signal(());
            }
            // The motor waits on the reserve: a flash that cannot be
            // written stops the infusion rather than run past what a
            // restart would know. Tried again at the next look.
            Err(_) => Timer::after(LOOK).await,
        }
    }
}

/// What should be in flash now, and the reserve it gives the motor. The
/// reserve is kept while the order is the same and the motor is more than
/// half a reserve short of it; otherwise it is moved ahead.
pub fn wanted(pump: &Pump<OUTBOX>, kept: &Kept, reserved: Reserved) -> (Kept, Reserved) {
    let i = pump.infusion();
    let version = pump.applied_version();
    let open = !matches!(i.phase(), Phase::Idle | Phase::Completed) && i.version() > 0;
    let mut want = Kept {
        next_seq: pump.outbox().next_seq(),
        applied_version: version,
        open: None,
        ..*kept
    };
    if !open {
        return (want, Reserved { version, steps: 0 });
    }
    let given = i.delivered_steps();
    let ahead = i.plan().steps_for_ul(AHEAD_UL) + 1;
    let same = reserved.version == i.version()
        && reserved.steps >= (given + ahead / 2).min(i.target_steps().max(given));
    let steps = if same {
        reserved.steps
    } else {
        (given + ahead).min(i.target_steps().max(given))
    };
    want.open = Some(OpenOrder {
        delivered_steps: steps,
        plunger_steps: i.plunger_steps() + (steps - given),
    });
    (
        want,
        Reserved {
            version: i.version(),
            steps,
        },
    )
}
