//! `infusion admin ...`: account, device, limit and prescription management
//! straight on the database.

use std::path::Path;

use anyhow::{Context, bail};
use infusion_protocol::{InfusionState, MacAddress, PatientLimits};
use infusion_server::clock::now_ms;
use infusion_server::identity::{ServerKeys, new_device_secret};
use infusion_server::password::PasswordParams;
use infusion_store::{
    Confirmation, Limits, NewNurse, NewPatient, NewPhysician, NewPrescription, PatientIdentifiers,
    Policy, Store, check_password,
};
use serde_json::json;

use crate::cli::{AdminCommand, StaffArgs};
use infusion_bench::database::Database;

/// Who the audit log names for changes made here.
const ACTOR: &str = "admin-cli";

/// Reads a password from the first line of standard input, so that it never
/// appears in shell history or in `ps`; checks it against `context` (the
/// account's username and names).
fn password_from_stdin(context: &[&str]) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    check_password(&password, context)?;
    Ok(password)
}

async fn hash(password: String) -> anyhow::Result<String> {
    let hashed =
        tokio::task::spawn_blocking(move || PasswordParams::default().hash_blocking(&password))
            .await
            .context("hashing task")??;
    Ok(hashed)
}

/// Prints a result: the human line, or the JSON object with `--json`.
fn emit(json_mode: bool, human: String, value: serde_json::Value) {
    if json_mode {
        println!("{value}");
    } else {
        println!("{human}");
    }
}

/// Runs one admin command: each is one function below.
pub async fn run(db: &Database, json: bool, cmd: AdminCommand) -> anyhow::Result<()> {
    use AdminCommand as C;
    match cmd {
        C::Migrate => migrate(db, json).await,
        C::VerifyAudit { anchor } => verify_audit(db, json, anchor.as_deref()).await,
        C::Backup { to } => backup(db, json, &to).await,
        C::Restore { from } => restore(db, json, &from).await,
        C::CreatePhysician(a) => create_staff(&*db.open().await?, json, a, false).await,
        C::CreateAdmin(a) => create_staff(&*db.open().await?, json, a, true).await,
        C::CreatePatient {
            username,
            first_name,
            last_name,
            physician,
            record_number,
            birth_date,
            password_stdin: _,
        } => {
            let context = [username.as_str(), &first_name, &last_name];
            let password_hash = hash(password_from_stdin(&context)?).await?;
            let new = NewPatient {
                username,
                first_name,
                last_name,
                physician_username: physician,
                password_hash,
                identifiers: PatientIdentifiers {
                    record_number,
                    birth_date,
                },
            };
            create_patient(&*db.open().await?, json, new).await
        }
        cmd @ (C::CreateWard { .. }
        | C::CreateNurse { .. }
        | C::AssignWard { .. }
        | C::SetEmail { .. }
        | C::SetEscalation { .. }) => care_team(db, json, cmd).await,
        C::DisableAccount { username } => {
            set_enabled(&*db.open().await?, json, &username, false).await
        }
        C::EnableAccount { username } => {
            set_enabled(&*db.open().await?, json, &username, true).await
        }
        C::ResetTwoFactor { username } => {
            let had = db
                .open()
                .await?
                .reset_second_factor(&username, ACTOR, now_ms())
                .await?;
            let human = if had {
                format!(
                    "{username}'s authenticator removed: it enrols a new one after its password"
                )
            } else {
                format!("{username} had no authenticator")
            };
            emit(json, human, json!({"username": username, "removed": had}));
            Ok(())
        }
        C::SetTimeZone { institution, zone } => {
            let store = db.open().await?;
            store
                .set_time_zone(&institution, &zone, ACTOR, now_ms())
                .await?;
            let zone = infusion_store::time_zone(&zone)?;
            let name = zone.iana_name().unwrap_or("UTC");
            emit(
                json,
                format!("{institution} reads times in {name}"),
                json!({"institution": institution, "time_zone": name}),
            );
            Ok(())
        }
        C::UnbindDevice { patient } => {
            let store = db.open().await?;
            let id = store.patient_id(&patient).await?;
            store.unbind_device(id, ACTOR, now_ms()).await?;
            emit(
                json,
                format!("unbound {patient}'s pump: it can no longer log in or receive orders"),
                json!({"patient": patient, "unbound": true}),
            );
            Ok(())
        }
        C::MovePatient { patient, physician } => {
            let store = db.open().await?;
            let id = store.patient_id(&patient).await?;
            store.move_patient(id, &physician, ACTOR, now_ms()).await?;
            emit(
                json,
                format!("{patient} is now {physician}'s patient"),
                json!({"patient": patient, "physician": physician}),
            );
            Ok(())
        }
        C::BindDevice { patient, mac } => {
            bind_device(&*db.open().await?, json, &patient, &mac).await
        }
        C::SetLimits {
            patient,
            min_rate_ul_h,
            max_rate_ul_h,
            max_volume_ul,
            soft_min_rate_ul_h,
            soft_max_rate_ul_h,
            soft_max_volume_ul,
        } => {
            let hard = PatientLimits {
                min_rate_ul_h,
                max_rate_ul_h,
                max_volume_ul,
            };
            let soft = PatientLimits {
                min_rate_ul_h: soft_min_rate_ul_h.unwrap_or(min_rate_ul_h),
                max_rate_ul_h: soft_max_rate_ul_h.unwrap_or(max_rate_ul_h),
                max_volume_ul: soft_max_volume_ul.unwrap_or(max_volume_ul),
            };
            let limits = Limits {
                hard,
                soft,
                set: true,
            };
            set_limits(&*db.open().await?, json, &patient, limits).await
        }
        C::SetPrescription {
            patient,
            volume_ul,
            rate_ul_h,
            hold,
            reason,
        } => {
            let state = if hold {
                InfusionState::Hold
            } else {
                InfusionState::Run
            };
            let p = NewPrescription {
                volume_ul,
                rate_ul_h,
                state,
                drug: None,
            };
            let confirmation = Confirmation {
                reason,
                ..Confirmation::default()
            };
            set_prescription(&*db.open().await?, json, &patient, p, &confirmation).await
        }
        C::ExportKeys { key_file } => export_keys(&*db.open().await?, json, &key_file).await,
    }
}

/// `admin migrate`.
async fn migrate(db: &Database, json: bool) -> anyhow::Result<()> {
    let applied = db.migrate().await?;
    emit(
        json,
        format!("applied {applied} migration(s)"),
        json!({"applied": applied}),
    );
    Ok(())
}

/// `admin backup --to`.
async fn backup(db: &Database, json: bool, to: &Path) -> anyhow::Result<()> {
    let bytes = crate::backup::backup(db, to).await?;
    emit(
        json,
        format!(
            "backed up {} to {} ({bytes} bytes)",
            db.url.redacted(),
            to.display()
        ),
        json!({"backup": to, "bytes": bytes}),
    );
    Ok(())
}

/// `admin restore --from`.
async fn restore(db: &Database, json: bool, from: &Path) -> anyhow::Result<()> {
    crate::backup::restore(db, from).await?;
    emit(
        json,
        format!("restored {} from {}", db.url.redacted(), from.display()),
        json!({"restored": from}),
    );
    Ok(())
}

/// `admin create-ward`, `create-nurse`, `assign-ward`, `set-email` and
/// `set-escalation`.
async fn care_team(db: &Database, json: bool, cmd: AdminCommand) -> anyhow::Result<()> {
    use AdminCommand as C;
    match cmd {
        C::CreateWard { name, institution } => {
            let store = db.open().await?;
            let id = store
                .create_ward(&name, institution.as_deref(), ACTOR, now_ms())
                .await?;
            emit(
                json,
                format!("created ward {name}"),
                json!({"ward": name, "ward_id": id.0}),
            );
            Ok(())
        }
        C::CreateNurse {
            username,
            first_name,
            last_name,
            ward,
            email,
            password_stdin: _,
        } => {
            let context = [username.as_str(), &first_name, &last_name];
            let password_hash = hash(password_from_stdin(&context)?).await?;
            let new = NewNurse {
                username: username.clone(),
                first_name,
                last_name,
                ward: ward.clone(),
                password_hash,
                // Whoever runs the command chose it: the nurse replaces it
                // at the first web login.
                must_change_password: true,
            };
            if let Some(e) = &email {
                infusion_store::check_email(e)?;
            }
            let store = db.open().await?;
            let id = store.create_nurse(new, ACTOR, now_ms()).await?;
            if let Some(e) = &email {
                store.set_email(&username, Some(e), ACTOR, now_ms()).await?;
            }
            emit(
                json,
                format!("created nurse {username} of ward {ward}"),
                json!({"username": username, "account_id": id.0, "ward": ward}),
            );
            Ok(())
        }
        C::AssignWard { patient, ward } => {
            let store = db.open().await?;
            let id = store.patient_id(&patient).await?;
            store.assign_ward(id, &ward, ACTOR, now_ms()).await?;
            emit(
                json,
                format!("{patient} is on ward {ward}: its nurses see the patient now"),
                json!({"patient": patient, "ward": ward}),
            );
            Ok(())
        }
        C::SetEmail { username, email } => {
            let store = db.open().await?;
            store
                .set_email(&username, email.as_deref(), ACTOR, now_ms())
                .await?;
            let human = match &email {
                Some(e) => format!("alarm emails for {username} go to {e}"),
                None => format!("{username} gets no alarm emails"),
            };
            emit(json, human, json!({"username": username, "email": email}));
            Ok(())
        }
        C::SetEscalation {
            ward,
            to_ward_after_s,
            to_physician_after_s,
        } => {
            let policy = Policy {
                to_ward_after_ms: i64::from(to_ward_after_s) * 1000,
                to_physician_after_ms: i64::from(to_physician_after_s) * 1000,
            };
            let store = db.open().await?;
            store
                .set_escalation_policy(&ward, policy, ACTOR, now_ms())
                .await?;
            emit(
                json,
                format!(
                    "ward {ward}: an unacknowledged alarm goes to every nurse after                      {to_ward_after_s} s, to the physician {to_physician_after_s} s later"
                ),
                json!({"ward": ward, "to_ward_after_s": to_ward_after_s,
                       "to_physician_after_s": to_physician_after_s}),
            );
            Ok(())
        }
        other => bail!("not a care team command: {other:?}"),
    }
}

/// `admin create-physician` and `admin create-admin`.
async fn create_staff(
    store: &dyn Store,
    json: bool,
    a: StaffArgs,
    admin: bool,
) -> anyhow::Result<()> {
    let context = [a.username.as_str(), &a.first_name, &a.last_name];
    let password_hash = hash(password_from_stdin(&context)?).await?;
    let new = NewPhysician {
        username: a.username.clone(),
        first_name: a.first_name,
        last_name: a.last_name,
        institution: a.institution,
        password_hash,
        // Whoever runs the command chose it: its owner replaces it at the
        // first web login.
        must_change_password: true,
    };
    let id = if admin {
        store.create_admin(new, ACTOR, now_ms()).await?
    } else {
        store.create_physician(new, ACTOR, now_ms()).await?
    };
    let role = if admin { "administrator" } else { "physician" };
    emit(
        json,
        format!("created {role} {}", a.username),
        json!({"username": a.username, "account_id": id.0}),
    );
    Ok(())
}

/// `admin create-patient`: `new` is the patient with the password hash
/// read from standard input.
async fn create_patient(store: &dyn Store, json: bool, new: NewPatient) -> anyhow::Result<()> {
    let username = new.username.clone();
    let id = store.create_patient(new, ACTOR, now_ms()).await?;
    emit(
        json,
        format!("created patient {username} with patient_id {}", id.0),
        json!({"username": username, "patient_id": id.0}),
    );
    Ok(())
}

/// `admin bind-device`: prints the new device secret, once, and the
/// server key the pump is to trust.
async fn bind_device(
    store: &dyn Store,
    json: bool,
    patient: &str,
    mac: &str,
) -> anyhow::Result<()> {
    let Ok(parsed) = MacAddress::parse(mac) else {
        bail!("{mac:?} is not a MAC address (expected AA:BB:CC:DD:EE:FF)");
    };
    let now = now_ms();
    let secret = new_device_secret()?;
    let patient_id = store.patient_id(patient).await?;
    let id = store
        .bind_device(patient_id, parsed, secret.public_key(), ACTOR, now)
        .await?;
    let server_key = ServerKeys::public_key(store, now).await?;
    emit(
        json,
        format!(
            "bound device {parsed} to {patient}\n\
             device secret {} (shown only now: provision it into the pump; binding again issues a new one)\n\
             server key    {server_key} (provision it into the pump: it runs only indexes this key signed)",
            secret.to_hex()
        ),
        json!({
            "patient": patient,
            "mac": parsed.to_string(),
            "device_id": id.0,
            "device_secret": secret.to_hex().to_string(),
            "server_key": server_key.to_string(),
        }),
    );
    Ok(())
}

/// `admin disable-account` and `admin enable-account`.
async fn set_enabled(
    store: &dyn Store,
    json: bool,
    username: &str,
    enabled: bool,
) -> anyhow::Result<()> {
    store
        .set_account_enabled(username, enabled, ACTOR, now_ms())
        .await?;
    let done = if enabled { "enabled" } else { "disabled" };
    emit(
        json,
        format!("{username} {done}"),
        json!({"username": username, "enabled": enabled}),
    );
    Ok(())
}

/// `admin set-limits`.
async fn set_limits(
    store: &dyn Store,
    json: bool,
    patient: &str,
    limits: Limits,
) -> anyhow::Result<()> {
    let patient_id = store.patient_id(patient).await?;
    store
        .set_limits(patient_id, limits, ACTOR, now_ms())
        .await?;
    let (l, s) = (limits.hard, limits.soft);
    emit(
        json,
        format!(
            "limits of {patient}: {}..={} µL/h, at most {} µL; usual {}..={} µL/h, at most {} µL",
            l.min_rate_ul_h,
            l.max_rate_ul_h,
            l.max_volume_ul,
            s.min_rate_ul_h,
            s.max_rate_ul_h,
            s.max_volume_ul
        ),
        json!({"patient": patient, "min_rate_ul_h": l.min_rate_ul_h,
               "max_rate_ul_h": l.max_rate_ul_h, "max_volume_ul": l.max_volume_ul,
               "soft_min_rate_ul_h": s.min_rate_ul_h, "soft_max_rate_ul_h": s.max_rate_ul_h,
               "soft_max_volume_ul": s.max_volume_ul}),
    );
    Ok(())
}

/// `admin set-prescription`.
async fn set_prescription(
    store: &dyn Store,
    json: bool,
    patient: &str,
    p: NewPrescription,
    confirmation: &Confirmation,
) -> anyhow::Result<()> {
    let patient_id = store.patient_id(patient).await?;
    let version = store
        .prescribe(patient_id, p, confirmation, ACTOR, now_ms())
        .await?;
    emit(
        json,
        format!(
            "prescription version {version} for {patient}: {} µL at {} µL/h, {}",
            p.volume_ul,
            p.rate_ul_h,
            p.state.as_str()
        ),
        json!({"patient": patient, "version": version}),
    );
    Ok(())
}

/// `admin export-keys`.
async fn export_keys(store: &dyn Store, json: bool, key_file: &Path) -> anyhow::Result<()> {
    let server_key = ServerKeys::export(store, key_file, ACTOR, now_ms()).await?;
    emit(
        json,
        format!(
            "moved the server keys to {} (start every server with --key-file {0}); \
             the database keeps only the public index key {server_key}",
            key_file.display()
        ),
        json!({"key_file": key_file, "server_key": server_key.to_string()}),
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `admin verify-audit`: walks the chain, prints the verdict and every
/// fault, and fails when the log is not intact.
async fn verify_audit(db: &Database, json_mode: bool, anchor: Option<&str>) -> anyhow::Result<()> {
    let anchor = anchor
        .map(|a| {
            let a = a.trim().to_ascii_lowercase();
            if a.len() != 64 || !a.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("--anchor must be 64 hex digits (a head hash printed by verify-audit)");
            }
            Ok(a)
        })
        .transpose()?;
    let store = db.open().await?;
    let v = infusion_store::audit_chain::verify_audit(&*store).await?;
    let mut faults: Vec<String> = v.faults.iter().map(ToString::to_string).collect();
    if let Some(anchor) = &anchor {
        let mut found = hex(&v.head.hash) == *anchor;
        let mut after = 0;
        while !found {
            let page = store.audit_chain(after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            found = page
                .iter()
                .any(|r| r.hash.is_some_and(|h| hex(&h) == *anchor));
        }
        if !found {
            faults.push(format!(
                "the anchor {anchor} is no longer in the chain: the log was rewritten since it was recorded"
            ));
        }
    }
    let head = hex(&v.head.hash);
    if json_mode {
        println!(
            "{}",
            json!({"intact": faults.is_empty(), "rows": v.rows, "head_last_id": v.head.last_id,
                   "head_hash": head, "faults": faults})
        );
    } else {
        for f in &faults {
            println!("FAULT: {f}");
        }
        println!(
            "{} rows, head row {} hash {head}: {}",
            v.rows,
            v.head.last_id,
            if faults.is_empty() {
                "intact"
            } else {
                "NOT intact"
            }
        );
    }
    if faults.is_empty() {
        Ok(())
    } else {
        bail!("the audit log is not intact ({} fault(s))", faults.len())
    }
}
