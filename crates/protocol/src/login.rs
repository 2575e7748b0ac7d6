//! `POST /api/v1/device/challenge` and `POST /api/v1/device/login`.

use core::fmt;

use crate::limits::{INSTITUTION_MAX, NAME_MAX, PASSWORD_MAX, USERNAME_MAX};
use crate::{DeviceSecret, MacAddress, Nonce, PatientId, Signature, Token};

/// What the pump sends to log in: the patient account's credentials, the
/// pump's own MAC address, which must be the device bound to that account,
/// and the proof that it holds that device's secret: its signature
/// ([`crate::DeviceSecret::prove`]) over a nonce from
/// `POST /api/v1/device/challenge`. Only a server started with
/// `--paper-login` accepts a login without `nonce` and `proof`.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The patient account's username.
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 64))]
    pub username: heapless::String<USERNAME_MAX>,
    /// The patient account's password.
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 128))]
    pub password: heapless::String<PASSWORD_MAX>,
    /// The pump's MAC address.
    pub mac: MacAddress,
    /// The challenge being answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Nonce>,
    /// The device's Ed25519 signature over `nonce`, `username` and `mac`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Signature>,
}

impl LoginRequest {
    /// The body before its challenge: the account's credentials and the
    /// pump's MAC, no nonce or proof yet; `None` when a credential is
    /// longer than the device API takes.
    pub fn new(username: &str, password: &str, mac: MacAddress) -> Option<LoginRequest> {
        Some(LoginRequest {
            username: heapless::String::try_from(username).ok()?,
            password: heapless::String::try_from(password).ok()?,
            mac,
            nonce: None,
            proof: None,
        })
    }

    /// Answers the challenge `nonce` with the proof that this pump holds
    /// `secret`.
    pub fn answer(&mut self, nonce: Nonce, secret: &DeviceSecret) {
        self.proof = Some(secret.prove(&nonce, &self.username, self.mac));
        self.nonce = Some(nonce);
    }
}

/// Keeps the password out of logs and panic messages.
impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"..")
            .field("mac", &self.mac)
            .field("nonce", &self.nonce)
            .field("proof", &self.proof.map(|_| ".."))
            .finish()
    }
}

/// The answer to a successful login: who the pump serves (shown on its
/// display, as in the paper) and the first token of the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// Patient's first name.
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 64))]
    pub first_name: heapless::String<NAME_MAX>,
    /// Patient's last name.
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 64))]
    pub last_name: heapless::String<NAME_MAX>,
    /// The institution that treats the patient.
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 128))]
    pub institution: heapless::String<INSTITUTION_MAX>,
    /// The patient to ask the index for.
    pub patient_id: PatientId,
    /// Single-use token for the next request.
    pub token: Token,
    /// Seconds until `token` expires, counted from this answer.
    pub expires_in_s: u32,
    /// The lowest sequence number this device's stored events leave free:
    /// one past the highest stored. A pump whose own counter is lower has
    /// lost it (wiped flash, a replacement board) and numbers its events
    /// from here, so that none collides with one stored before. Absent
    /// from servers before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_seq: Option<u32>,
}

/// A login challenge: sign `nonce` with the device secret and log in within
/// `expires_in_s`. Each nonce logs a device in once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeResponse {
    /// The nonce to sign.
    pub nonce: Nonce,
    /// Seconds the nonce stays valid, counted from this answer.
    pub expires_in_s: u32,
}
