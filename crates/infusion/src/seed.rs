//! Accounts for the demo and the benchmark: a physician and patients with
//! a bound pump, limits and a running prescription.

use std::sync::Arc;

use infusion_protocol::{InfusionState, MacAddress, PatientLimits};
use infusion_server::clock::now_ms;
use infusion_server::password::PasswordParams;
use infusion_store::{NewPatient, NewPhysician, NewPrescription, Store};

/// One patient to create.
pub struct Patient {
    /// Login name.
    pub username: String,
    /// First name.
    pub first_name: String,
    /// The pump bound to the account.
    pub mac: MacAddress,
    /// Limits, or the pump's hard limits when `None`.
    pub limits: Option<PatientLimits>,
    /// Prescription volume, µL (run state).
    pub volume_ul: u32,
    /// Prescription rate, µL/h.
    pub rate_ul_h: u32,
}

/// Creates `physician` at `institution` and each patient under them, all
/// with `password`, and returns nothing but success. `actor` names the
/// writer in the audit log.
pub async fn seed(
    store: &Arc<dyn Store>,
    physician: &str,
    institution: &str,
    password: &'static str,
    patients: &[Patient],
    actor: &str,
) -> anyhow::Result<()> {
    let hash =
        tokio::task::spawn_blocking(move || PasswordParams::default().hash_blocking(password))
            .await??;
    let now = now_ms();
    store
        .create_physician(
            NewPhysician {
                username: physician.into(),
                first_name: "Demo".into(),
                last_name: "Physician".into(),
                institution: institution.into(),
                password_hash: hash.clone(),
            },
            actor,
            now,
        )
        .await?;
    for p in patients {
        store
            .create_patient(
                NewPatient {
                    username: p.username.clone(),
                    first_name: p.first_name.clone(),
                    last_name: "Patient".into(),
                    physician_username: physician.into(),
                    password_hash: hash.clone(),
                },
                actor,
                now,
            )
            .await?;
        store.bind_device(&p.username, p.mac, actor, now).await?;
        if let Some(limits) = p.limits {
            store.set_limits(&p.username, limits, actor, now).await?;
        }
        store
            .set_prescription(
                &p.username,
                NewPrescription {
                    volume_ul: p.volume_ul,
                    rate_ul_h: p.rate_ul_h,
                    state: InfusionState::Run,
                },
                physician,
                now,
            )
            .await?;
    }
    Ok(())
}
