//! `POST /api/v1/device/index`: the infusion index and the next token.

use crate::{PatientId, Signature, Token};

/// Whether the pump should be infusing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InfusionState {
    /// Infuse towards `volume_ul` at `rate_ul_h`.
    Run,
    /// Stop the motor and keep what was delivered; resume on `run`.
    Hold,
}

impl InfusionState {
    /// The state as it appears on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            InfusionState::Run => "run",
            InfusionState::Hold => "hold",
        }
    }
}

/// The physician's limits for this patient. The pump checks the index
/// against them as well, so a bad index is refused at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatientLimits {
    /// Lowest rate allowed, µL/h.
    pub min_rate_ul_h: u32,
    /// Highest rate allowed, µL/h.
    pub max_rate_ul_h: u32,
    /// Largest volume one prescription may ask for, µL.
    pub max_volume_ul: u32,
}

impl PatientLimits {
    /// True when a prescription of this volume and rate is inside the limits.
    pub fn allows(&self, volume_ul: u32, rate_ul_h: u32) -> bool {
        volume_ul <= self.max_volume_ul
            && rate_ul_h >= self.min_rate_ul_h
            && rate_ul_h <= self.max_rate_ul_h
    }
}

/// The infusion index: the prescription the pump must run now.
///
/// `volume_ul` is the total the infusion delivers. A new version while an
/// infusion runs or is held adjusts it: the new rate applies from the next
/// motor step and delivery stops at the new total (at once, if already
/// reached). A new `run` version after completion starts a new infusion.
///
/// `version` grows by one on every change of the prescription; version 0
/// means no prescription has been written yet (volume 0, state `hold`). A
/// pump compares `version` with the one it runs and adjusts at once when it
/// differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Prescription version, increasing with every change.
    pub version: u32,
    /// Total volume to deliver under this prescription, µL.
    pub volume_ul: u32,
    /// Delivery rate, µL/h.
    pub rate_ul_h: u32,
    /// Run or hold.
    pub state: InfusionState,
    /// The patient's limits at the time of this answer.
    pub limits: PatientLimits,
}

/// Body of an index request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IndexRequest {
    /// The patient from the login answer.
    pub patient_id: PatientId,
}

/// Answer to an index request: the index, the server's signature of it, and
/// the token for the next request. The pump runs an index only when
/// `signature` verifies under the server key provisioned into it, for its
/// own patient and MAC ([`crate::verify_index`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexResponse {
    /// The prescription to run.
    pub index: Index,
    /// Ed25519 signature of `index` for this patient and device.
    pub signature: Signature,
    /// Single-use token for the next request.
    pub token: Token,
    /// Seconds until `token` expires.
    pub expires_in_s: u32,
}
