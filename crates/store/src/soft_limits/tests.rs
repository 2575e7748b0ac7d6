use infusion_protocol::{InfusionState, PatientId, PatientLimits};

use super::*;
use crate::{AuditAction, Standing, next_version};

const HARD: PatientLimits = PatientLimits {
    min_rate_ul_h: 500,
    max_rate_ul_h: 10_000,
    max_volume_ul: 20_000,
};

/// Soft 1 to 8 mL/h, at most 15 mL, inside hard 0.5 to 10 mL/h, 20 mL.
fn limits() -> Limits {
    Limits {
        hard: HARD,
        soft: PatientLimits {
            min_rate_ul_h: 1_000,
            max_rate_ul_h: 8_000,
            max_volume_ul: 15_000,
        },
        set: true,
    }
}

fn rx(volume_ul: u32, rate_ul_h: u32, state: InfusionState) -> NewPrescription {
    NewPrescription {
        volume_ul,
        rate_ul_h,
        state,
        drug: None,
    }
}

fn running(rate_ul_h: u32) -> Prescription {
    Prescription {
        version: 3,
        volume_ul: 10_000,
        rate_ul_h,
        state: InfusionState::Run,
        created_at_ms: 0,
        created_by: "doc".into(),
        fetched_at_ms: None,
        drug: None,
    }
}

fn reason(r: &str) -> Confirmation {
    Confirmation {
        reason: Some(r.into()),
        rate_step: RateStep::DEFAULT,
    }
}

#[test]
fn no_order_before_limits_are_set() {
    let unset = Limits {
        set: false,
        ..Limits::hard_only(crate::DEFAULT_LIMITS)
    };
    let err = next_version(
        &rx(1_000_000, 200_000, InfusionState::Run),
        Standing {
            limits: &unset,
            current: None,
            drug: None,
        },
        &reason("anything"),
        PatientId(1),
        "doc",
        0,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("limits have not been set"),
        "{err}"
    );
}

#[test]
fn inside_the_soft_limits_needs_no_reason() {
    let l = limits();
    let ok = confirmed(
        &rx(10_000, 5_000, InfusionState::Run),
        &l,
        Some(&running(4_000)),
        &Confirmation::default(),
    );
    assert_eq!(ok, Ok(None));
}

#[test]
fn across_a_soft_limit_needs_a_reason_which_is_audited() {
    let l = limits();
    let order = rx(16_000, 9_000, InfusionState::Run);
    let Err(StoreError::NeedsConfirmation(crossed)) =
        confirmed(&order, &l, Some(&running(6_000)), &Confirmation::default())
    else {
        panic!("a soft limit crossed without a reason");
    };
    assert_eq!(
        crossed,
        [
            "the volume 16 mL is above the soft limit of 15 mL",
            "the rate 9 mL/h is above the soft limit of 8 mL/h"
        ]
    );
    // A blank reason is none.
    assert!(matches!(
        confirmed(&order, &l, None, &reason("   ")),
        Err(StoreError::NeedsConfirmation(_))
    ));
    let (version, effects) = next_version(
        &order,
        Standing {
            limits: &l,
            current: Some(&running(6_000)),
            drug: None,
        },
        &reason("tremor not controlled at 6 mL/h"),
        PatientId(1),
        "user:doc",
        7,
    )
    .unwrap();
    assert_eq!(version, 4);
    let actions: Vec<_> = effects.audit.iter().map(|a| a.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::PrescriptionChanged,
            AuditAction::SoftLimitConfirmed
        ]
    );
    assert!(
        effects.audit[1]
            .detail
            .ends_with("reason: tremor not controlled at 6 mL/h")
    );
    // Below the soft minimum.
    assert!(matches!(
        confirmed(
            &rx(1_000, 700, InfusionState::Run),
            &l,
            None,
            &Confirmation::default()
        ),
        Err(StoreError::NeedsConfirmation(_))
    ));
}

#[test]
fn beyond_a_hard_limit_is_refused_whatever_the_reason() {
    let err = next_version(
        &rx(10_000, 10_001, InfusionState::Run),
        Standing {
            limits: &limits(),
            current: None,
            drug: None,
        },
        &reason("urgent"),
        PatientId(1),
        "doc",
        0,
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::OutsideLimits(_)), "{err}");
    assert!(err.to_string().contains("10.001 mL/h"), "{err}");
}

#[test]
fn a_rate_step_beyond_the_factor_needs_a_reason() {
    let l = limits();
    let none = Confirmation::default();
    let up = rx(10_000, 6_001, InfusionState::Run);
    let down = rx(10_000, 1_499, InfusionState::Run);
    for order in [up, down] {
        let Err(StoreError::NeedsConfirmation(c)) =
            confirmed(&order, &l, Some(&running(3_000)), &none)
        else {
            panic!("{order:?}");
        };
        assert_eq!(c.len(), 1);
        assert!(c[0].contains("from 3 mL/h"), "{c:?}");
    }
    // Exactly double or half is within.
    for rate in [6_000, 1_500] {
        assert_eq!(
            confirmed(
                &rx(10_000, rate, InfusionState::Run),
                &l,
                Some(&running(3_000)),
                &none
            ),
            Ok(None)
        );
    }
    // A configured factor of 1.5.
    let tight = Confirmation::none(RateStep::parse("1.5").unwrap());
    assert!(
        confirmed(
            &rx(10_000, 4_600, InfusionState::Run),
            &l,
            Some(&running(3_000)),
            &tight
        )
        .is_err()
    );
}

#[test]
fn a_hold_never_needs_a_reason() {
    let order = rx(16_000, 9_000, InfusionState::Hold);
    assert_eq!(
        confirmed(
            &order,
            &limits(),
            Some(&running(1_000)),
            &Confirmation::default()
        ),
        Ok(None)
    );
}

#[test]
fn soft_limits_lie_inside_the_hard_ones() {
    assert_eq!(check_soft(&limits()), Ok(()));
    let mut l = limits();
    l.soft.max_rate_ul_h = 10_500;
    assert!(check_soft(&l).is_err());
    let mut l = limits();
    l.soft.min_rate_ul_h = 400;
    assert!(check_soft(&l).is_err());
    let mut l = limits();
    l.soft.max_volume_ul = 25_000;
    assert!(check_soft(&l).unwrap_err().to_string().contains("25 mL"));
}

#[test]
fn rate_steps_parse_as_typed() {
    assert_eq!(RateStep::parse("2"), Some(RateStep::DEFAULT));
    assert_eq!(
        RateStep::parse("1.25").map(|s| s.factor_permille),
        Some(1_250)
    );
    for bad in ["0.5", "", "x", "1.0001", "-2"] {
        assert_eq!(RateStep::parse(bad), None, "{bad:?}");
    }
}
