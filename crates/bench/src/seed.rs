//! Accounts for the demo and the benchmark: a physician and patients with
//! a bound pump, limits and a running prescription.

use std::sync::Arc;

use infusion_protocol::{DeviceSecret, InfusionState, MacAddress, PatientLimits};
use infusion_server::clock::now_ms;
use infusion_server::password::PasswordParams;
use infusion_store::{NewPatient, NewPhysician, NewPrescription, Store};

/// A locally administered MAC address for seeded pump number `n` of a
/// family `kind` (one byte per tool: bench, load, accuracy), unique for
/// every `n` below 2^32.
pub fn mac(kind: u8, n: u32) -> MacAddress {
    let [a, b, c, d] = n.to_be_bytes();
    MacAddress([0x02, kind, a, b, c, d])
}

/// One patient to create.
#[derive(Debug, Clone)]
pub struct Patient {
    /// Login name.
    pub username: String,
    /// First name.
    pub first_name: String,
    /// The pump bound to the account.
    pub mac: MacAddress,
    /// The pump's device secret; its public half is bound with the MAC.
    pub secret: DeviceSecret,
    /// Limits, or the pump's hard limits when `None`.
    pub limits: Option<PatientLimits>,
    /// Prescription volume, µL (run state).
    pub volume_ul: u32,
    /// Prescription rate, µL/h.
    pub rate_ul_h: u32,
    /// Record number and date of birth.
    pub identifiers: infusion_store::PatientIdentifiers,
}

/// Creates `physician` at `institution` and each patient under them, all
/// with `password` hashed with `params`, and returns nothing but success.
/// `actor` names the writer in the audit log. Patients are created many at
/// a time, so that the store's group commit can batch them: a fleet of
/// thousands takes seconds, not minutes.
pub async fn seed(
    store: &Arc<dyn Store>,
    physician: &str,
    institution: &str,
    password: &'static str,
    patients: &[Patient],
    actor: &str,
    params: PasswordParams,
) -> crate::BenchResult<()> {
    let hash = tokio::task::spawn_blocking(move || params.hash_blocking(password)).await??;
    let now = now_ms();
    store
        .create_physician(
            NewPhysician {
                username: physician.into(),
                first_name: "Demo".into(),
                last_name: "Physician".into(),
                institution: institution.into(),
                password_hash: hash.clone(),
                must_change_password: false,
            },
            actor,
            now,
        )
        .await?;
    for chunk in patients.chunks(64) {
        let mut tasks = tokio::task::JoinSet::new();
        for p in chunk.iter().cloned() {
            let store = Arc::clone(store);
            let (hash, physician, actor) = (hash.clone(), physician.to_owned(), actor.to_owned());
            tasks.spawn(async move { patient(&store, p, &hash, &physician, &actor, now).await });
        }
        for done in tasks.join_all().await {
            done?;
        }
    }
    Ok(())
}

async fn patient(
    store: &Arc<dyn Store>,
    p: Patient,
    hash: &str,
    physician: &str,
    actor: &str,
    now: i64,
) -> crate::BenchResult<()> {
    let id = store
        .create_patient(
            NewPatient {
                username: p.username.clone(),
                first_name: p.first_name.clone(),
                last_name: "Patient".into(),
                physician_username: physician.into(),
                password_hash: hash.into(),
                identifiers: p.identifiers.clone(),
            },
            actor,
            now,
        )
        .await?;
    store
        .bind_device(id, p.mac, p.secret.public_key(), actor, now)
        .await?;
    // No order is written before limits are set: a bench patient without
    // limits of its own gets the pump's whole range, set explicitly.
    let limits = p.limits.unwrap_or(infusion_store::DEFAULT_LIMITS);
    store.set_limits(id, limits.into(), actor, now).await?;
    store
        .set_prescription(
            id,
            NewPrescription {
                volume_ul: p.volume_ul,
                rate_ul_h: p.rate_ul_h,
                state: InfusionState::Run,
                drug: None,
            },
            physician,
            now,
        )
        .await?;
    Ok(())
}

/// Foslevodopa/foscarbidopa 240 mg/mL for continuous subcutaneous
/// infusion: doses of 20 to 250 mg/h, usually 40 to 180 mg/h.
pub fn foslevodopa() -> infusion_store::NewDrug {
    infusion_store::NewDrug {
        name: "Foslevodopa/foscarbidopa".into(),
        concentration_ug_ml: 240_000,
        hard: infusion_store::DoseLimits {
            min_ug_h: 20_000,
            max_ug_h: 250_000,
            max_ug: 2_400_000,
        },
        soft: infusion_store::DoseLimits {
            min_ug_h: 40_000,
            max_ug_h: 180_000,
            max_ug: 1_920_000,
        },
    }
}
