use infusion_protocol::InfusionState;
use proptest::prelude::*;

use super::*;

/// Foslevodopa/foscarbidopa 240 mg/mL, continuous subcutaneous infusion:
/// hard 20 to 250 mg/h, usual 40 to 180 mg/h, at most 2400 mg an order.
fn foslevodopa() -> Drug {
    Drug {
        id: DrugId(3),
        drug: NewDrug {
            name: "Foslevodopa/foscarbidopa".into(),
            concentration_ug_ml: 240_000,
            hard: DoseLimits {
                min_ug_h: 20_000,
                max_ug_h: 250_000,
                max_ug: 2_400_000,
            },
            soft: DoseLimits {
                min_ug_h: 40_000,
                max_ug_h: 180_000,
                max_ug: 1_920_000,
            },
        },
        withdrawn: false,
    }
}

fn order(drug: &Drug, dose_ug_h: u32, amount_ug: u32) -> NewPrescription {
    NewPrescription {
        volume_ul: drug.volume_ul(amount_ug).unwrap(),
        rate_ul_h: drug.rate_ul_h(dose_ug_h).unwrap(),
        state: InfusionState::Run,
        drug: Some(drug.id),
    }
}

#[test]
fn doses_convert_to_the_pumps_units_in_integers() {
    let d = foslevodopa();
    // 120 mg/h of 240 mg/mL is 0.5 mL/h exactly; 1200 mg is 5 mL.
    assert_eq!(d.rate_ul_h(120_000), Some(500));
    assert_eq!(d.volume_ul(1_200_000), Some(5_000));
    // 100 mg/h is 416.67 µL/h: the pump gets 417, which gives 100.08 mg/h.
    assert_eq!(d.rate_ul_h(100_000), Some(417));
    assert_eq!(d.dose_ug_h(417), 100_080);
    assert_eq!(d.rate_words(417), "100.08 mg/h (0.417 mL/h)");
    assert_eq!(d.label(), "Foslevodopa/foscarbidopa 240 mg/mL");
    assert_eq!(mg(2_400_000), "2400 mg");
}

#[test]
fn the_librarys_limits_become_a_patients_rounded_inwards() {
    let l = foslevodopa().limits();
    // 20 mg/h is 83.3 µL/h: up to 84; 250 mg/h is 1041.7 µL/h: down to 1041.
    // 84 is below the pump's 0.1 mL/h, so the pump's lowest is kept.
    assert_eq!(l.hard.min_rate_ul_h, 100);
    assert_eq!(l.hard.max_rate_ul_h, 1_041);
    assert_eq!(l.hard.max_volume_ul, 10_000);
    assert_eq!(l.soft.min_rate_ul_h, 167);
    assert_eq!(l.soft.max_rate_ul_h, 750);
    assert!(l.set);
    assert!(crate::soft_limits::check_soft(&l).is_ok());
}

#[test]
fn an_order_is_checked_against_its_drug() {
    let d = foslevodopa();
    assert_eq!(
        drug_crossings(&order(&d, 120_000, 1_200_000), Some(&d)),
        Ok(vec![])
    );
    // Above the usual range: a reason is needed.
    let crossed = drug_crossings(&order(&d, 200_000, 1_200_000), Some(&d)).unwrap();
    assert_eq!(
        crossed,
        [
            "the dose 199.92 mg/h is above the drug library's usual highest dose of \
          Foslevodopa/foscarbidopa, 180 mg/h"
        ]
    );
    // Beyond the hard limit: refused, in mg/h.
    let err = drug_crossings(&order(&d, 260_000, 1_200_000), Some(&d)).unwrap_err();
    assert!(matches!(err, StoreError::OutsideLimits(_)), "{err}");
    assert!(err.to_string().contains("259.92 mg/h"), "{err}");
    // A drug not in the patient's library, or withdrawn.
    assert!(matches!(
        drug_crossings(&order(&d, 120_000, 1_200_000), None),
        Err(StoreError::NotFound(_))
    ));
    let withdrawn = Drug {
        withdrawn: true,
        ..foslevodopa()
    };
    assert!(matches!(
        drug_crossings(&order(&d, 120_000, 1_200_000), Some(&withdrawn)),
        Err(StoreError::Invalid(_))
    ));
    // An order naming no drug has nothing to check here.
    let plain = NewPrescription::plain(5_000, 500, InfusionState::Run);
    assert_eq!(drug_crossings(&plain, Some(&d)), Ok(vec![]));
}

#[test]
fn a_new_drug_is_checked_before_it_is_added() {
    let d = foslevodopa().drug;
    let e = drug_added(&d, false, "user:admin", 5).unwrap();
    assert_eq!(e.audit[0].action, AuditAction::DrugAdded);
    assert_eq!(
        e.audit[0].detail,
        "Foslevodopa/foscarbidopa 240 mg/mL; hard limits 20 mg/h to 250 mg/h, at most 2400 mg; \
         usual range 40 mg/h to 180 mg/h, at most 1920 mg"
    );
    assert!(matches!(
        drug_added(&d, true, "x", 0),
        Err(StoreError::Conflict(_))
    ));
    let bad = |f: fn(&mut NewDrug)| {
        let mut n = d.clone();
        f(&mut n);
        drug_added(&n, false, "x", 0)
    };
    assert!(bad(|n| n.name = " ".into()).is_err());
    assert!(bad(|n| n.name = "a\nb".into()).is_err());
    assert!(bad(|n| n.concentration_ug_ml = 0).is_err());
    assert!(bad(|n| n.hard.min_ug_h = 300_000).is_err());
    assert!(bad(|n| n.soft.max_ug_h = 260_000).is_err());
    assert!(bad(|n| n.hard.max_ug = 0).is_err());
    // At 1 mg/mL, 500 mg/h would be 500 mL/h: beyond the pump.
    assert!(bad(|n| n.concentration_ug_ml = 1).is_err());
}

#[test]
fn withdrawing_is_once_and_only_in_ones_own_library() {
    let d = foslevodopa();
    assert_eq!(
        drug_withdrawn(Some(&d), "user:admin", 1).unwrap().audit[0].action,
        AuditAction::DrugWithdrawn
    );
    assert!(matches!(
        drug_withdrawn(None, "x", 1),
        Err(StoreError::NotFound(_))
    ));
    let gone = Drug {
        withdrawn: true,
        ..foslevodopa()
    };
    assert!(matches!(
        drug_withdrawn(Some(&gone), "x", 1),
        Err(StoreError::Conflict(_))
    ));
}

proptest! {
    /// The rate the pump is given is the nearest to the typed dose: the
    /// dose it really gives is within half a µL/h's worth of it.
    #[test]
    fn the_pump_gets_the_nearest_rate(dose in 1u32..1_000_000, conc in 1u32..=CONCENTRATION_MAX_UG_ML) {
        let ul = volume_of(dose, conc).unwrap();
        let given_ng = u64::from(ul) * u64::from(conc);
        let wanted_ng = u64::from(dose) * 1_000;
        prop_assert!(given_ng.abs_diff(wanted_ng) * 2 <= u64::from(conc));
    }

    /// The library's limits as a patient's never allow a dose beyond the
    /// drug's hard limits (except where the pump's own range is narrower).
    #[test]
    fn library_limits_stay_inside(max in 1_000u32..300_000, conc in 10_000u32..500_000) {
        let mut d = foslevodopa();
        d.drug.concentration_ug_ml = conc;
        d.drug.hard.max_ug_h = max;
        d.drug.hard.min_ug_h = max / 10;
        let l = d.limits();
        if l.hard.max_rate_ul_h > MIN_RATE_UL_H {
            prop_assert!(d.dose_ug_h(l.hard.max_rate_ul_h) <= max + conc / 1_000);
            prop_assert!(u64::from(l.hard.max_rate_ul_h) * u64::from(conc) <= u64::from(max) * 1_000);
        }
    }
}
