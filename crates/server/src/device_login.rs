//! The device login's decisions, sans-IO: what the login handler reads
//! goes in, what it must answer, audit and count comes out. The handler
//! ([`crate::api::device::login`]) only fetches, calls these in order and
//! applies what they return:
//!
//! 1. [`challenge`]: the nonce and proof are there and the nonce is this
//!    server's and fresh (checked before anything about the account, so
//!    that its answer says nothing about the account);
//! 2. [`screen`], with the login record: is the proof of the device
//!    secret good for the device bound to this MAC; is the nonce newer
//!    than the device's last (a replay is refused before it counts
//!    anywhere, so that replays cannot lock the pump out); which throttle
//!    keys the attempt counts against (a login that proves the secret is
//!    counted on its device, so that whoever merely knows a username
//!    cannot lock the real pump out);
//! 3. [`judge`], after the password check: the refusal, its audit entry,
//!    and whether it counts as a failed attempt; a bad proof answers
//!    exactly like a wrong password, so that a cloner learns nothing;
//! 4. [`session_refused`]: what the session start's own refusals mean.

use std::net::IpAddr;

use infusion_protocol::{ErrorCode, LoginRequest, PatientId, verify_login_proof};
use infusion_store::throttle::{ThrottleKey, address_network};
use infusion_store::{AuditAction, BoundDevice, DeviceId, LoginRecord, NewAudit, StoreError};

use crate::error::ApiError;
use crate::password::Lane;

/// Why a login is refused, with what the refusal leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// What the pump is told.
    pub answer: Answer,
    /// What the audit log keeps, if anything.
    pub audit: Option<NewAudit>,
    /// True when the attempt counts as a failure against its throttle keys.
    pub counts: bool,
}

/// A login refusal as the pump is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `device_proof_required`: no `nonce` and `proof`.
    ProofRequired,
    /// `challenge_invalid`: a foreign, altered, expired or used nonce.
    ChallengeInvalid,
    /// `invalid_credentials`: unknown user, wrong password, or no valid
    /// proof of the device secret: one answer for all three.
    InvalidCredentials,
    /// `device_not_registered`: this MAC is not the device bound.
    NotRegistered,
    /// `challenge_invalid`: this login was taken once already (a captured
    /// login presented again).
    Replayed,
}

impl From<Answer> for ApiError {
    fn from(a: Answer) -> ApiError {
        match a {
            Answer::ProofRequired => ApiError::new(
                ErrorCode::DeviceProofRequired,
                "a device login needs `nonce` and `proof`: sign a challenge with the device secret",
            ),
            Answer::ChallengeInvalid => ApiError::new(
                ErrorCode::ChallengeInvalid,
                "this login challenge is not valid: ask for a new one",
            ),
            Answer::InvalidCredentials => ApiError::new(
                ErrorCode::InvalidCredentials,
                "unknown username or wrong password",
            ),
            Answer::NotRegistered => ApiError::new(
                ErrorCode::DeviceNotRegistered,
                "this device is not the one registered to this account",
            ),
            Answer::Replayed => StoreError::NonceReplayed.into(),
        }
    }
}

impl Refused {
    fn quietly(answer: Answer) -> Refused {
        Refused {
            answer,
            audit: None,
            counts: false,
        }
    }
}

/// Step 1. `checked` is what checking the request's nonce gave (`None`
/// without a nonce; `Some(None)` for a nonce that is not this server's or
/// not fresh; `Some(Some(stamp))`: its time and randomness). Returns the
/// stamp, or `None` for the paper's login on a `--paper-login` server.
pub fn challenge(
    checked: Option<Option<[u8; 16]>>,
    has_proof: bool,
    paper_login: bool,
) -> Result<Option<[u8; 16]>, Refused> {
    match (checked, has_proof) {
        (Some(Some(stamp)), true) => Ok(Some(stamp)),
        (Some(None), true) => Err(Refused::quietly(Answer::ChallengeInvalid)),
        _ if paper_login => Ok(None),
        _ => Err(Refused::quietly(Answer::ProofRequired)),
    }
}

/// What step 2 found, for the throttle and for step 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screened {
    /// The keys this attempt counts against.
    pub keys: Vec<ThrottleKey>,
    /// The hashing queue its password check waits in: first, once the
    /// device secret is proven.
    pub lane: Lane,
    /// Why the proof of the device secret fails, for the device bound to
    /// this MAC, if it does.
    pub proof_fault: Option<&'static str>,
}

/// Step 2, with the account's login record (`None`: no such patient).
pub fn screen(
    req: &LoginRequest,
    stamp: Option<[u8; 16]>,
    record: Option<&LoginRecord>,
    client: IpAddr,
    now_ms: i64,
) -> Result<Screened, Refused> {
    let bound = record.and_then(|r| r.device).filter(|d| d.mac == req.mac);
    let proof_fault = bound.and_then(|d| proof_failure(req, &d));
    let proven = match (stamp, record, bound) {
        (Some(stamp), Some(r), Some(device)) if proof_fault.is_none() => {
            if device.login_nonce.is_some_and(|last| stamp <= last) {
                return Err(replayed(req, r.patient_id, now_ms));
            }
            Some(device.id)
        }
        _ => None,
    };
    Ok(Screened {
        keys: crate::throttle::keys(&req.username, client, proven),
        lane: if proven.is_some() {
            Lane::Proven
        } else {
            Lane::Other(address_network(client))
        },
        proof_fault,
    })
}

/// Why a login's proof of the device secret fails for `device`, if it
/// does. `None` also for a paper login (no nonce, no proof), which step 1
/// has refused anywhere but on a `--paper-login` server.
fn proof_failure(req: &LoginRequest, device: &BoundDevice) -> Option<&'static str> {
    let (Some(nonce), Some(proof)) = (&req.nonce, &req.proof) else {
        return None;
    };
    let Some(key) = &device.public_key else {
        return Some("the device was bound before device secrets; bind it again");
    };
    if verify_login_proof(key, nonce, &req.username, req.mac, proof) {
        None
    } else {
        Some("the proof of the device secret does not verify")
    }
}

/// A captured login presented again: audited as `login_replayed`, never
/// counted, answered `challenge_invalid`.
fn replayed(req: &LoginRequest, patient: PatientId, now_ms: i64) -> Refused {
    let mac = req.mac.to_string();
    Refused {
        answer: Answer::Replayed,
        audit: Some(NewAudit::login_replayed(
            now_ms,
            &mac,
            patient,
            &req.username,
        )),
        counts: false,
    }
}

/// Step 3, once the password was checked against the record's hash (or a
/// dummy one for an unknown user): the device whose session may start.
pub fn judge(
    req: &LoginRequest,
    record: Option<&LoginRecord>,
    screened: &Screened,
    password_matched: bool,
    now_ms: i64,
) -> Result<DeviceId, Refused> {
    let refuse = |answer, patient: PatientId, what: &str| Refused {
        answer,
        audit: Some(NewAudit {
            at_ms: now_ms,
            actor: format!("device:{}", req.mac),
            action: AuditAction::DeviceLoginRefused,
            patient_id: Some(patient),
            detail: format!("username {:?}: {what}", req.username.as_str()),
        }),
        counts: true,
    };
    let Some(record) = record else {
        // A name no account has: counted by the throttle and the server,
        // not audited, so that guessing names cannot grow the audit log.
        return Err(Refused {
            answer: Answer::InvalidCredentials,
            audit: None,
            counts: true,
        });
    };
    if !password_matched {
        return Err(refuse(
            Answer::InvalidCredentials,
            record.patient_id,
            "invalid credentials",
        ));
    }
    let Some(device) = record.device.filter(|d| d.mac == req.mac) else {
        return Err(refuse(
            Answer::NotRegistered,
            record.patient_id,
            "device not registered",
        ));
    };
    if let Some(why) = screened.proof_fault {
        // Username, password and MAC were right: a cloned device, or a
        // pump that lost its secret. The physician sees why.
        let mac = req.mac.to_string();
        return Err(Refused {
            answer: Answer::InvalidCredentials,
            audit: Some(NewAudit::device_proof_failed(
                now_ms,
                &mac,
                record.patient_id,
                &req.username,
                why,
            )),
            counts: true,
        });
    }
    Ok(device.id)
}

/// Step 4: the session start's own refusals. `Forbidden`: the binding
/// changed since the record was read, refused like a wrong MAC;
/// `NonceReplayed`: a concurrent copy of this login won the race.
pub fn session_refused(
    e: StoreError,
    req: &LoginRequest,
    patient: PatientId,
    now_ms: i64,
) -> Result<Refused, StoreError> {
    match e {
        StoreError::Forbidden => Ok(Refused::quietly(Answer::NotRegistered)),
        StoreError::NonceReplayed => Ok(replayed(req, patient, now_ms)),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests;
