//! Devices: binding a pump (its MAC and the public half of its secret) to
//! a patient, and the device login that starts a token chain.

use async_trait::async_trait;
use infusion_protocol::{MacAddress, PatientId, PublicKey};

use crate::{AccountId, Effects, NewAudit, NewToken, StoreError, StoreResult};

/// Binding devices and logging them in, one transaction per method.
#[async_trait]
pub trait Devices: Send + Sync {
    /// Binds a device and the public half of its secret to a patient,
    /// replacing (and retiring) the device bound before. A MAC address
    /// serves one patient at a time. Binding the same MAC to the same
    /// patient again keeps the registration (and its event series) and
    /// replaces the key: the old secret stops working.
    async fn bind_device(
        &self,
        patient: PatientId,
        mac: MacAddress,
        public_key: PublicKey,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<DeviceId>;

    /// What a device login needs to know about a username: its password
    /// hash, names, and the device bound to it. `None` for an unknown user
    /// or an account that is not a patient's.
    async fn device_login_record(&self, username: &str) -> StoreResult<Option<LoginRecord>>;

    /// Records a successful device login: stores the first token's hash and
    /// writes the audit entry. With a `nonce` (the first 16 bytes of the
    /// login challenge: its time and randomness), the login is taken only
    /// if the nonce is newer than the last one this device used, and
    /// becomes the last one; otherwise [`StoreError::NonceReplayed`] and
    /// nothing changes. Returns the device's next free event sequence
    /// number (one past its highest stored, 0 with none), which the login
    /// answer gives the pump as `next_seq`.
    async fn start_device_session(
        &self,
        record: &LoginRecord,
        device: DeviceId,
        nonce: Option<[u8; 16]>,
        token: NewToken,
        now_ms: i64,
    ) -> StoreResult<u32>;
}

/// A device registration's row id. Event sequence numbers are unique per
/// device registration; a pump bound again (a new secret, perhaps a
/// replacement board with the same MAC) keeps its registration and its
/// series, and learns where the series stands at login (`next_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub i64);

/// What a device login needs about one patient account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    /// The account.
    pub account_id: AccountId,
    /// The patient record of the account.
    pub patient_id: PatientId,
    /// Argon2id PHC string to verify the password against.
    pub password_hash: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Institution name.
    pub institution: String,
    /// The device bound to the account, if any.
    pub device: Option<BoundDevice>,
}

/// The device bound to an account, as a login checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundDevice {
    /// Its record.
    pub id: DeviceId,
    /// Its MAC address (the paper's check).
    pub mac: MacAddress,
    /// The public half of its secret. `None` for a device bound before
    /// device secrets existed: it can log in only to a server started with
    /// `--paper-login` until it is bound again.
    pub public_key: Option<PublicKey>,
    /// The time and randomness of the newest login challenge this device
    /// logged in with: a login whose challenge is not newer is a replay.
    pub login_nonce: Option<[u8; 16]>,
}

/// How a binding is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The same pump bound to the same patient again: keep its
    /// registration and event series, replace its key, and end every token
    /// chain issued before (raise the device's token generation): a chain
    /// started under the old secret must not outlive it.
    Rekey(DeviceId),
    /// A new registration; the patient's current device, if any, is
    /// retired.
    New,
}

/// Decides a binding of `mac` to `patient`, given the registration that
/// holds the MAC now (its id and patient), if any. Returns how to write it
/// and the audit entry (`username` is the patient's, for the reader of the
/// log).
pub fn bind(
    patient: PatientId,
    username: &str,
    mac: &MacAddress,
    holder: Option<(DeviceId, PatientId)>,
    actor: &str,
    now_ms: i64,
) -> StoreResult<(Binding, Effects)> {
    let binding = match holder {
        Some((id, owner)) if owner == patient => Binding::Rekey(id),
        Some(_) => return Err(StoreError::device_taken(mac)),
        None => Binding::New,
    };
    let audit = NewAudit::device_bound(now_ms, actor, patient, &mac.to_string(), username);
    Ok((binding, Effects::audit(audit)))
}

/// The device of a login as the session start finds it, in its
/// transaction: still bound to the patient, its MAC and the newest login
/// nonce it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundNow {
    /// Its MAC address as stored (for the audit).
    pub mac: String,
    /// The newest login nonce it logged in with.
    pub login_nonce: Option<[u8; 16]>,
}

/// Decides whether a device login may start its session: the device must
/// still be bound (`None`: the binding changed since the login record was
/// read, refused like a wrong MAC), and a login nonce must be strictly
/// newer than the last one used (a replay otherwise). Returns the nonce to
/// store, if any, and the audit entry. The backend starts the session by
/// raising the device's token generation before it stores the first
/// token: a device has one live chain, and a login ends the earlier ones.
pub fn start_session(
    bound: Option<BoundNow>,
    nonce: Option<[u8; 16]>,
    patient: PatientId,
    now_ms: i64,
) -> StoreResult<(Option<[u8; 16]>, Effects)> {
    let Some(bound) = bound else {
        return Err(StoreError::Forbidden);
    };
    if let (Some(new), Some(last)) = (nonce, bound.login_nonce)
        && new <= last
    {
        return Err(StoreError::NonceReplayed);
    }
    let audit = NewAudit::device_login(now_ms, &bound.mac, patient);
    Ok((nonce, Effects::audit(audit)))
}

/// Decodes a MAC address as stored.
pub fn stored_mac(s: &str) -> StoreResult<MacAddress> {
    MacAddress::parse(s).map_err(|_| StoreError::Backend(format!("bad stored MAC {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditAction;
    use proptest::prelude::*;

    fn mac() -> MacAddress {
        MacAddress::parse("AA:BB:CC:DD:EE:01").unwrap()
    }

    #[test]
    fn a_mac_is_rekeyed_for_its_own_patient_refused_for_another_and_new_otherwise() {
        let me = PatientId(1);
        let (b, e) = bind(me, "pat", &mac(), Some((DeviceId(9), me)), "admin-cli", 5).unwrap();
        assert_eq!(b, Binding::Rekey(DeviceId(9)));
        assert_eq!(e.audit[0].action, AuditAction::DeviceBound);
        assert_eq!(e.audit[0].detail, "device AA:BB:CC:DD:EE:01 bound to pat");
        let (b, _) = bind(me, "pat", &mac(), None, "admin-cli", 5).unwrap();
        assert_eq!(b, Binding::New);
        assert!(matches!(
            bind(me, "pat", &mac(), Some((DeviceId(9), PatientId(2))), "x", 5),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn a_session_needs_the_binding_still_in_place() {
        assert_eq!(
            start_session(None, None, PatientId(1), 0),
            Err(StoreError::Forbidden)
        );
        let bound = BoundNow {
            mac: "AA:BB:CC:DD:EE:01".into(),
            login_nonce: None,
        };
        let (stored, e) = start_session(Some(bound), None, PatientId(1), 0).unwrap();
        assert_eq!(stored, None);
        assert_eq!(e.audit[0].action, AuditAction::DeviceLogin);
        assert_eq!(e.audit[0].actor, "device:AA:BB:CC:DD:EE:01");
    }

    proptest! {
        /// A nonce is taken exactly when it is newer than the last one, in
        /// the byte order both databases compare blobs in.
        #[test]
        fn a_login_nonce_is_taken_only_when_strictly_newer(
            last in proptest::option::of(any::<[u8; 16]>()),
            new in any::<[u8; 16]>(),
        ) {
            let bound = BoundNow { mac: "AA:BB:CC:DD:EE:01".into(), login_nonce: last };
            let taken = start_session(Some(bound), Some(new), PatientId(1), 0);
            match last {
                Some(last) if new <= last => prop_assert_eq!(taken, Err(StoreError::NonceReplayed)),
                _ => prop_assert_eq!(taken.map(|(n, _)| n), Ok(Some(new))),
            }
        }
    }
}
