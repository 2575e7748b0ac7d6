//! Device API v1: the JSON contract between a pump and the server.
//!
//! Pump firmware is written against these types, so they are the contract:
//! field names, units and error codes never change within `v1`. The crate is
//! `#![no_std]` and allocates nothing, so the very same definitions compile
//! into the firmware (`riscv32imc-unknown-none-elf`) and into the server.
//!
//! Every quantity is an integer in a named unit: microlitres (`_ul`),
//! microlitres per hour (`_ul_h`), milliseconds (`_ms`). Strings have fixed
//! maximum lengths ([`limits`]) so that a decoder on a microcontroller can
//! hold them in fixed buffers and so that oversized input is refused while
//! decoding, before any handler sees it.
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(test)]
extern crate std;

pub mod error;
pub mod event;
pub mod identity;
pub mod index;
pub mod limits;
pub mod login;
pub mod mac;
pub mod report;
pub mod token;

pub use error::{ErrorBody, ErrorCode};
pub use event::{
    Alarm, Event, EventBody, EventError, EventKind, Progress, StateChange, Vitals, WireEvent,
};
pub use identity::{
    DeviceSecret, HexBytes, HexParseError, IndexSigner, Nonce, PublicKey, Signature, verify_index,
    verify_login_proof,
};
pub use index::{Index, IndexRequest, IndexResponse, InfusionState, PatientLimits};
pub use login::{ChallengeResponse, LoginRequest, LoginResponse};
pub use mac::{MacAddress, MacParseError};
pub use report::{ReportRequest, ReportRequestRef, ReportResponse};
pub use token::{Token, TokenParseError};

/// A patient's identifier, as the login answer gives it and the index and
/// report requests repeat it.
///
/// A newtype so that a patient id is never mistaken for a device, version or
/// sequence number; on the wire it is a plain JSON integer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct PatientId(pub u64);

/// Copies `s` into a fixed-capacity string, cutting at the last character
/// boundary that fits. For the server's way out (names it checked on
/// creation, human messages) where a cut is better than a failure.
pub fn truncated<const N: usize>(s: &str) -> heapless::String<N> {
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = heapless::String::new();
    // Cannot fail: `end` is at most the capacity.
    let _ = out.push_str(&s[..end]);
    out
}
