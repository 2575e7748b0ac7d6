//! The device login's decisions, table by table and as properties over
//! every combination of what a login can get right or wrong.

use std::net::IpAddr;

use infusion_protocol::{DeviceSecret, HexBytes, LoginRequest, MacAddress, PatientId};
use infusion_store::{AccountId, AuditAction, BoundDevice, DeviceId, LoginRecord, StoreError};
use proptest::prelude::*;

use super::*;

const MAC: &str = "AA:BB:CC:DD:EE:01";
const OTHER_MAC: &str = "AA:BB:CC:DD:EE:02";

fn peer() -> IpAddr {
    "10.0.0.7".parse().unwrap()
}

fn secret(seed: u8) -> DeviceSecret {
    DeviceSecret::from_bytes(&[seed; 32])
}

/// A login of "pat" from `mac`, signed with `signer` over a nonce whose
/// first 16 bytes are `stamp` (`None`: the paper's login, no proof).
fn request(mac: &str, signer: Option<&DeviceSecret>, stamp: [u8; 16]) -> LoginRequest {
    let mac = MacAddress::parse(mac).unwrap();
    let mut nonce = [0u8; 32];
    nonce[..16].copy_from_slice(&stamp);
    let nonce = HexBytes(nonce);
    LoginRequest {
        username: "pat".try_into().unwrap(),
        password: "a long password".try_into().unwrap(),
        mac,
        proof: signer.map(|s| s.prove(&nonce, "pat", mac)),
        nonce: signer.map(|_| nonce),
    }
}

/// The record of "pat", whose pump has MAC [`MAC`] and `key`'s public half.
fn record(key: Option<&DeviceSecret>, last: Option<[u8; 16]>) -> LoginRecord {
    LoginRecord {
        account_id: AccountId(1),
        patient_id: PatientId(2),
        password_hash: "$argon2id$x".into(),
        first_name: "Pat".into(),
        last_name: "Doe".into(),
        institution: "General".into(),
        device: Some(BoundDevice {
            id: DeviceId(3),
            mac: MacAddress::parse(MAC).unwrap(),
            public_key: key.map(DeviceSecret::public_key),
            login_nonce: last,
        }),
    }
}

#[test]
fn the_challenge_is_checked_before_the_account() {
    let stamp = [7; 16];
    assert_eq!(challenge(Some(Some(stamp)), true, false), Ok(Some(stamp)));
    let refused = |c, p, paper| challenge(c, p, paper).unwrap_err().answer;
    assert_eq!(refused(Some(None), true, false), Answer::ChallengeInvalid);
    assert_eq!(refused(Some(None), true, true), Answer::ChallengeInvalid);
    assert_eq!(refused(None, false, false), Answer::ProofRequired);
    // A nonce without a proof is no proof.
    assert_eq!(
        refused(Some(Some(stamp)), false, false),
        Answer::ProofRequired
    );
    assert_eq!(challenge(None, false, true), Ok(None));
}

#[test]
fn a_good_login_is_throttled_on_its_device_and_starts_its_session() {
    let key = secret(1);
    let r = record(Some(&key), Some([1; 16]));
    let req = request(MAC, Some(&key), [2; 16]);
    let s = screen(&req, Some([2; 16]), Some(&r), peer(), 0).unwrap();
    assert_eq!(s.keys, vec![ThrottleKey::device(DeviceId(3))]);
    assert_eq!(judge(&req, Some(&r), &s, true, 0), Ok(DeviceId(3)));
}

#[test]
fn a_replayed_login_is_refused_before_it_counts() {
    let key = secret(1);
    let r = record(Some(&key), Some([5; 16]));
    for stamp in [[5; 16], [4; 16]] {
        let req = request(MAC, Some(&key), stamp);
        let refused = screen(&req, Some(stamp), Some(&r), peer(), 9).unwrap_err();
        assert_eq!(refused.answer, Answer::Replayed);
        assert!(!refused.counts);
        assert_eq!(refused.audit.unwrap().action, AuditAction::LoginReplayed);
    }
}

#[test]
fn a_clone_is_answered_like_a_wrong_password_and_the_physician_is_told() {
    let r = record(Some(&secret(1)), None);
    let req = request(MAC, Some(&secret(9)), [2; 16]);
    let s = screen(&req, Some([2; 16]), Some(&r), peer(), 0).unwrap();
    assert_eq!(
        s.keys.len(),
        2,
        "an unproven login counts on username and address"
    );
    let refused = judge(&req, Some(&r), &s, true, 0).unwrap_err();
    let wrong_password = judge(&req, Some(&r), &s, false, 0).unwrap_err();
    assert_eq!(refused.answer, wrong_password.answer);
    assert!(refused.counts && wrong_password.counts);
    assert_eq!(
        refused.audit.unwrap().action,
        AuditAction::DeviceProofFailed
    );
    assert_eq!(
        wrong_password.audit.unwrap().action,
        AuditAction::DeviceLoginRefused
    );
}

#[test]
fn the_session_starts_refusals_are_a_wrong_mac_and_a_lost_race() {
    let req = request(MAC, Some(&secret(1)), [2; 16]);
    let p = PatientId(2);
    let refused = session_refused(StoreError::Forbidden, &req, p, 0).unwrap();
    assert_eq!(
        (refused.answer, refused.counts),
        (Answer::NotRegistered, false)
    );
    let refused = session_refused(StoreError::NonceReplayed, &req, p, 0).unwrap();
    assert_eq!(refused.answer, Answer::Replayed);
    assert!(session_refused(StoreError::Unavailable("x".into()), &req, p, 0).is_err());
}

proptest! {
    /// Whatever a login gets right or wrong, it starts a session exactly
    /// when the account exists, the password matches, the MAC is the
    /// bound pump's and the proof of its secret verifies over a nonce
    /// newer than its last; every other login that reached the password
    /// check is refused and counted (and audited when the account
    /// exists), with one answer for a wrong password and a bad proof.
    #[test]
    fn only_a_full_login_starts_a_session(
        exists: bool, matched: bool, right_mac: bool, key_bound: bool,
        right_signer: bool, newer: bool, stamp in any::<[u8; 16]>(),
    ) {
        let key = secret(1);
        let last = if newer { stamp.map(|b| b.saturating_sub(1)) } else { stamp };
        let newer = newer && last < stamp;
        let r = exists.then(|| record(key_bound.then_some(&key), Some(last)));
        let signer = if right_signer { secret(1) } else { secret(2) };
        let req = request(if right_mac { MAC } else { OTHER_MAC }, Some(&signer), stamp);
        let full = exists && matched && right_mac && key_bound && right_signer && newer;
        let screened = screen(&req, Some(stamp), r.as_ref(), peer(), 0);
        let proven = exists && right_mac && key_bound && right_signer;
        if proven && !newer {
            let refused = screened.unwrap_err();
            prop_assert_eq!(refused.answer, Answer::Replayed);
            prop_assert!(!refused.counts);
            return Ok(());
        }
        let screened = screened.unwrap();
        prop_assert_eq!(screened.keys.len() == 1, proven);
        let judged = judge(&req, r.as_ref(), &screened, matched, 0);
        prop_assert_eq!(judged.is_ok(), full);
        if let Err(refused) = judged {
            prop_assert!(refused.counts);
            prop_assert_eq!(refused.audit.is_some(), exists, "only a known account is audited");
            let expected = if exists && matched && !right_mac {
                Answer::NotRegistered
            } else {
                Answer::InvalidCredentials
            };
            prop_assert_eq!(refused.answer, expected);
        }
    }
}
