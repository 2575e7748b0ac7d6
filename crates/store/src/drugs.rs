//! The drug library: the drugs an institution's administrators keep,
//! each with its concentration and its default dose limits, the way a
//! hospital's infusion drug library works. An order that names a drug is
//! typed and shown in the drug's dose unit (mg/h and mg); the pump still
//! receives µL and µL/h, converted here in integers.
//!
//! A drug is never edited, only withdrawn and added again: a prescription
//! names the drug row it was written under, so its dose in mg/h reads the
//! same for as long as it is kept.

use async_trait::async_trait;
use infusion_protocol::limits::{MAX_RATE_UL_H, MAX_VOLUME_UL, MIN_RATE_UL_H};
use infusion_protocol::{PatientId, PatientLimits};

use crate::units::milli;
use crate::{AuditAction, Effects, Limits, NewAudit, NewPrescription, StoreError, StoreResult};

/// A drug library entry, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DrugId(pub i64);

/// Dose limits of a drug, in its dose unit: µg/h for rates, µg for the
/// amount (mg/h and mg to people).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoseLimits {
    /// Lowest dose rate, µg/h.
    pub min_ug_h: u32,
    /// Highest dose rate, µg/h.
    pub max_ug_h: u32,
    /// Largest amount of one order, µg.
    pub max_ug: u32,
}

/// A drug to add to an institution's library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDrug {
    /// Its name as prescribers know it ("Foslevodopa/foscarbidopa").
    pub name: String,
    /// Concentration, µg/mL (240 mg/mL is 240 000).
    pub concentration_ug_ml: u32,
    /// Never beyond these.
    pub hard: DoseLimits,
    /// Beyond these only with a reason; inside the hard ones.
    pub soft: DoseLimits,
}

/// A drug of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drug {
    /// Its row.
    pub id: DrugId,
    /// Name, concentration and limits.
    pub drug: NewDrug,
    /// Withdrawn from the library: no new order may name it.
    pub withdrawn: bool,
}

/// An institution's drug library, one transaction per method.
#[async_trait]
pub trait Drugs: Send + Sync {
    /// Adds a drug to `institution`'s library, as [`drug_added`] decides.
    async fn add_drug(
        &self,
        institution: &str,
        drug: NewDrug,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<DrugId>;

    /// Withdraws a drug of `institution`'s library (orders already
    /// written keep naming it). `NotFound` for another institution's.
    async fn withdraw_drug(
        &self,
        institution: &str,
        drug: DrugId,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// `institution`'s library, withdrawn drugs too, by name.
    async fn drugs(&self, institution: &str) -> StoreResult<Vec<Drug>>;

    /// The library of `patient`'s institution, withdrawn drugs too, by
    /// name: what a prescriber picks from, and what older orders name.
    async fn drugs_for(&self, patient: PatientId) -> StoreResult<Vec<Drug>>;
}

/// Longest drug name, in characters.
pub const DRUG_NAME_MAX: usize = 80;

/// Highest concentration accepted, µg/mL (1 g/mL).
pub const CONCENTRATION_MAX_UG_ML: u32 = 1_000_000;

/// `µL` of a drug at `concentration` µg/mL holding `ug` µg, to the
/// nearest µL (half up). `None` beyond `u32`.
pub fn volume_of(ug: u32, concentration_ug_ml: u32) -> Option<u32> {
    let c = u64::from(concentration_ug_ml.max(1));
    u32::try_from((u64::from(ug) * 1_000 + c / 2) / c).ok()
}

/// The µg in `ul` µL at `concentration` µg/mL, to the nearest µg (half
/// up). Exact in ng: `ul × concentration`.
pub fn amount_of(ul: u32, concentration_ug_ml: u32) -> u32 {
    let ng = u64::from(ul) * u64::from(concentration_ug_ml);
    u32::try_from((ng + 500) / 1_000).unwrap_or(u32::MAX)
}

/// `120000` µg as `120 mg`.
pub fn mg(ug: u32) -> String {
    format!("{} mg", milli(ug))
}

/// `120000` µg/h as `120 mg/h`.
pub fn mg_h(ug_h: u32) -> String {
    format!("{} mg/h", milli(ug_h))
}

/// `240000` µg/mL as `240 mg/mL`.
pub fn mg_ml(ug_ml: u32) -> String {
    format!("{} mg/mL", milli(ug_ml))
}

impl Drug {
    /// The µL/h that gives `dose_ug_h`, to the nearest µL/h.
    pub fn rate_ul_h(&self, dose_ug_h: u32) -> Option<u32> {
        volume_of(dose_ug_h, self.drug.concentration_ug_ml)
    }

    /// The µL that holds `amount_ug`, to the nearest µL.
    pub fn volume_ul(&self, amount_ug: u32) -> Option<u32> {
        volume_of(amount_ug, self.drug.concentration_ug_ml)
    }

    /// The dose rate, µg/h, that `rate_ul_h` gives.
    pub fn dose_ug_h(&self, rate_ul_h: u32) -> u32 {
        amount_of(rate_ul_h, self.drug.concentration_ug_ml)
    }

    /// The amount, µg, that `volume_ul` holds.
    pub fn amount_ug(&self, volume_ul: u32) -> u32 {
        amount_of(volume_ul, self.drug.concentration_ug_ml)
    }

    /// "Foslevodopa/foscarbidopa 240 mg/mL".
    pub fn label(&self) -> String {
        format!(
            "{} {}",
            self.drug.name,
            mg_ml(self.drug.concentration_ug_ml)
        )
    }

    /// `"0.5 mL/h (120 mg/h)"`-style words of a rate, in both units.
    pub fn rate_words(&self, rate_ul_h: u32) -> String {
        format!(
            "{} ({})",
            mg_h(self.dose_ug_h(rate_ul_h)),
            crate::units::ml_h(rate_ul_h)
        )
    }

    /// The drug's limits as a patient's, in µL/h and µL (rates rounded
    /// inwards so that they never allow more than the drug's, and kept
    /// within the pump's range): what "use the library's limits" sets.
    pub fn limits(&self) -> Limits {
        let c = self.drug.concentration_ug_ml;
        let inward = |d: &DoseLimits| {
            let low = u64::from(d.min_ug_h) * 1_000;
            let c64 = u64::from(c.max(1));
            let min = u32::try_from(low.div_ceil(c64)).unwrap_or(u32::MAX);
            let max = u32::try_from(u64::from(d.max_ug_h) * 1_000 / c64).unwrap_or(u32::MAX);
            let vol = u32::try_from(u64::from(d.max_ug) * 1_000 / c64).unwrap_or(u32::MAX);
            PatientLimits {
                min_rate_ul_h: min.clamp(MIN_RATE_UL_H, MAX_RATE_UL_H),
                max_rate_ul_h: max.clamp(MIN_RATE_UL_H, MAX_RATE_UL_H),
                max_volume_ul: vol.clamp(1, MAX_VOLUME_UL),
            }
        };
        Limits {
            hard: inward(&self.drug.hard),
            soft: inward(&self.drug.soft),
            set: true,
        }
    }
}

/// An order in words, in the drug's units with the pump's beside them
/// when it names one: "Foslevodopa/foscarbidopa 240 mg/mL, 1200 mg (5 mL)
/// at 120 mg/h (0.5 mL/h), run"; else "5 mL at 0.5 mL/h, run".
pub fn order_text(p: &NewPrescription, drug: Option<&Drug>) -> String {
    use crate::units::{ml, ml_h};
    let state = crate::order_words(p.state);
    match drug.filter(|d| Some(d.id) == p.drug) {
        Some(d) => format!(
            "{}, {} ({}) at {} ({}), {state}",
            d.label(),
            mg(d.amount_ug(p.volume_ul)),
            ml(p.volume_ul),
            mg_h(d.dose_ug_h(p.rate_ul_h)),
            ml_h(p.rate_ul_h)
        ),
        None => format!("{} at {}, {state}", ml(p.volume_ul), ml_h(p.rate_ul_h)),
    }
}

/// The drug `id` of `drugs`, if it is there.
pub fn drug_in(drugs: &[Drug], id: Option<DrugId>) -> Option<&Drug> {
    id.and_then(|id| drugs.iter().find(|d| d.id == id))
}

fn check_dose(what: &str, d: &DoseLimits) -> Result<(), StoreError> {
    if d.min_ug_h > d.max_ug_h {
        return Err(StoreError::Invalid(format!(
            "{what}: the lowest dose, {}, is above the highest, {}",
            mg_h(d.min_ug_h),
            mg_h(d.max_ug_h)
        )));
    }
    if d.max_ug_h == 0 || d.max_ug == 0 {
        return Err(StoreError::Invalid(format!(
            "{what}: the highest dose and the largest amount must be more than 0 mg"
        )));
    }
    Ok(())
}

/// Decides a new drug of a library in which `name_taken` says whether a
/// drug of that name (whatever its case) is still in use: a name, a
/// concentration, hard limits in order and soft ones inside them, and
/// limits the pump can give. Returns its audit entry.
pub fn drug_added(
    new: &NewDrug,
    name_taken: bool,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    let name = new.name.trim();
    if name.is_empty()
        || name.chars().count() > DRUG_NAME_MAX
        || name.chars().any(char::is_control)
        || name != new.name
    {
        return Err(StoreError::Invalid(format!(
            "a drug's name is 1 to {DRUG_NAME_MAX} characters of text, without spaces around it"
        )));
    }
    if new.concentration_ug_ml == 0 || new.concentration_ug_ml > CONCENTRATION_MAX_UG_ML {
        return Err(StoreError::Invalid(format!(
            "the concentration must be more than 0 and at most {}",
            mg_ml(CONCENTRATION_MAX_UG_ML)
        )));
    }
    check_dose("hard limits", &new.hard)?;
    check_dose("usual range", &new.soft)?;
    let (h, s) = (&new.hard, &new.soft);
    if s.min_ug_h < h.min_ug_h || s.max_ug_h > h.max_ug_h || s.max_ug > h.max_ug {
        return Err(StoreError::Invalid(
            "the usual range must lie inside the hard limits".into(),
        ));
    }
    let drug = Drug {
        id: DrugId(0),
        drug: new.clone(),
        withdrawn: false,
    };
    let lowest = drug.rate_ul_h(h.min_ug_h).unwrap_or(u32::MAX);
    let highest = drug.rate_ul_h(h.max_ug_h).unwrap_or(u32::MAX);
    if highest < MIN_RATE_UL_H || lowest > MAX_RATE_UL_H {
        return Err(StoreError::Invalid(format!(
            "at {} the doses {} to {} are {} to {}, outside the pump's {} to {}",
            mg_ml(new.concentration_ug_ml),
            mg_h(h.min_ug_h),
            mg_h(h.max_ug_h),
            crate::units::ml_h(lowest),
            crate::units::ml_h(highest),
            crate::units::ml_h(MIN_RATE_UL_H),
            crate::units::ml_h(MAX_RATE_UL_H)
        )));
    }
    if name_taken {
        return Err(StoreError::Conflict(format!(
            "the library already has a drug named {name}: withdraw it first to change it"
        )));
    }
    Ok(Effects::audit(NewAudit::of(
        now_ms,
        actor,
        AuditAction::DrugAdded,
        None,
        format!(
            "{}; hard limits {} to {}, at most {}; usual range {} to {}, at most {}",
            drug.label(),
            mg_h(new.hard.min_ug_h),
            mg_h(new.hard.max_ug_h),
            mg(new.hard.max_ug),
            mg_h(new.soft.min_ug_h),
            mg_h(new.soft.max_ug_h),
            mg(new.soft.max_ug)
        ),
    )))
}

/// Decides withdrawing `found`, the drug as its institution's library
/// holds it (`None`: not in that library). Returns its audit entry.
pub fn drug_withdrawn(found: Option<&Drug>, actor: &str, now_ms: i64) -> StoreResult<Effects> {
    let drug = found.ok_or_else(|| {
        StoreError::NotFound("that drug is not in this institution's library".into())
    })?;
    if drug.withdrawn {
        return Err(StoreError::Conflict(format!(
            "{} was already withdrawn",
            drug.label()
        )));
    }
    Ok(Effects::audit(NewAudit::of(
        now_ms,
        actor,
        AuditAction::DrugWithdrawn,
        None,
        drug.label(),
    )))
}

/// Checks an order against the drug it names, `found` being that drug
/// as the patient's institution's library holds it. Refused when the
/// drug is not there or withdrawn, or the dose is beyond its hard
/// limits; returns the soft limits the dose crosses, in words, which
/// need a reason like the patient's own.
pub fn drug_crossings(p: &NewPrescription, found: Option<&Drug>) -> StoreResult<Vec<String>> {
    let Some(id) = p.drug else {
        return Ok(Vec::new());
    };
    let drug = found.filter(|d| d.id == id).ok_or_else(|| {
        StoreError::NotFound("that drug is not in this patient's institution's library".into())
    })?;
    if drug.withdrawn {
        return Err(StoreError::Invalid(format!(
            "{} has been withdrawn from the drug library: choose another",
            drug.label()
        )));
    }
    let (dose, amount) = (drug.dose_ug_h(p.rate_ul_h), drug.amount_ug(p.volume_ul));
    let (hard, soft) = (&drug.drug.hard, &drug.drug.soft);
    let name = &drug.drug.name;
    if dose < hard.min_ug_h || dose > hard.max_ug_h || amount > hard.max_ug {
        return Err(StoreError::OutsideLimits(format!(
            "{} at {} of {name} is outside the drug library's limits ({} to {}, at most {}); \
             nothing was changed",
            mg(amount),
            mg_h(dose),
            mg_h(hard.min_ug_h),
            mg_h(hard.max_ug_h),
            mg(hard.max_ug)
        )));
    }
    let mut out = Vec::new();
    if p.state == infusion_protocol::InfusionState::Hold {
        return Ok(out);
    }
    if dose > soft.max_ug_h {
        out.push(format!(
            "the dose {} is above the drug library's usual highest dose of {name}, {}",
            mg_h(dose),
            mg_h(soft.max_ug_h)
        ));
    }
    if dose < soft.min_ug_h {
        out.push(format!(
            "the dose {} is below the drug library's usual lowest dose of {name}, {}",
            mg_h(dose),
            mg_h(soft.min_ug_h)
        ));
    }
    if amount > soft.max_ug {
        out.push(format!(
            "the amount {} is above the drug library's usual largest amount of {name}, {}",
            mg(amount),
            mg(soft.max_ug)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
