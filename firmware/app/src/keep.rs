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
    // Never past the order's total (nor below what was given).
    let cap = i.target_steps().max(given);
    let same = reserved.version == i.version() && reserved.steps >= (given + ahead / 2).min(cap);
    let steps = if same {
        reserved.steps
    } else {
        (given + ahead).min(cap)
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

#[cfg(test)]
mod tests {
    use infusion_protocol::{
        HexBytes, Index, IndexResponse, InfusionState, LoginResponse, PatientId, PatientLimits,
        Token,
    };
    use infusion_pump_core::{Pump, PumpConfig};

    use super::*;

    fn token() -> Token {
        Token::parse("tttttttttttttttttttttttttttttttttttttttttt0").unwrap()
    }

    /// A paper pump (no key: any answer is taken) running 1 mL at
    /// 36 mL/h from time 0.
    fn running() -> Pump<OUTBOX> {
        let mut p = Pump::new(PumpConfig::default());
        p.poll_request(0);
        p.handle_login(
            0,
            Ok(&LoginResponse {
                first_name: heapless::String::new(),
                last_name: heapless::String::new(),
                institution: heapless::String::new(),
                patient_id: PatientId(1),
                token: token(),
                expires_in_s: 300,
                next_seq: None,
            }),
        );
        p.poll_request(0);
        let index = Index {
            version: 3,
            volume_ul: 1_000,
            rate_ul_h: 36_000,
            state: InfusionState::Run,
            limits: PatientLimits {
                min_rate_ul_h: 100,
                max_rate_ul_h: 200_000,
                max_volume_ul: 10_000,
            },
        };
        p.handle_index(
            0,
            Ok(&IndexResponse {
                index,
                signature: HexBytes([0; 64]),
                token: token(),
                expires_in_s: 300,
            }),
        );
        p
    }

    fn kept() -> Kept {
        Kept {
            next_seq: 1,
            applied_version: 0,
            open: None,
            device_secret: [1; 32],
            server_key: [2; 32],
        }
    }

    #[test]
    fn an_idle_pump_keeps_no_open_order() {
        let p: Pump<OUTBOX> = Pump::new(PumpConfig::default());
        let (want, reserved) = wanted(&p, &kept(), Reserved::default());
        assert_eq!(want.open, None);
        assert_eq!(reserved, Reserved::default());
        assert_eq!(want.device_secret, [1; 32], "the secret goes along");
    }

    #[test]
    fn the_reserve_runs_ahead_of_the_motor_and_moves_at_half_way() {
        let mut p = running();
        let plan = *p.infusion().plan();
        let ahead = plan.steps_for_ul(AHEAD_UL) + 1;
        let (want, first) = wanted(&p, &kept(), Reserved::default());
        assert_eq!(want.applied_version, 3);
        assert_eq!(
            first,
            Reserved {
                version: 3,
                steps: ahead
            }
        );
        assert_eq!(want.open.map(|o| o.delivered_steps), Some(ahead));
        // 10 µL a second: half a reserve later it is still good...
        p.take_steps(900_000);
        assert!(p.infusion().delivered_steps() + ahead / 2 <= first.steps);
        let (_, same) = wanted(&p, &want, first);
        assert_eq!(same, first, "no save needed yet");
        // ...past half of it, it moves ahead of the motor again.
        p.take_steps(1_100_000);
        let given = p.infusion().delivered_steps();
        let (_, moved) = wanted(&p, &want, first);
        assert_eq!(moved.steps, given + ahead);
    }

    #[test]
    fn the_reserve_never_passes_the_order_total() {
        let mut p = running();
        // 99.5 s of the 100 s the order takes.
        p.take_steps(99_500_000);
        let (want, reserved) = wanted(&p, &kept(), Reserved::default());
        assert_eq!(reserved.steps, p.infusion().target_steps());
        assert!(want.open.is_some());
        p.take_steps(200_000_000);
        let (want, _) = wanted(&p, &want, reserved);
        assert_eq!(want.open, None, "a completed order is not open");
        assert_eq!(want.applied_version, 3, "and is never run again");
    }
}
