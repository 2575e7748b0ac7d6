//! Hard bounds of the wire format and of the pump hardware.
//!
//! They live in the protocol crate because both ends enforce them: the server
//! refuses a prescription or a report outside them, and the pump refuses an
//! index outside them even if a server were to send one.

/// Lowest rate the pump can deliver: 0.1 mL/h (paper, Table I).
pub const MIN_RATE_UL_H: u32 = 100;
/// Highest rate the pump can deliver: 200 mL/h (paper, Table I).
pub const MAX_RATE_UL_H: u32 = 200_000;
/// Largest volume a single prescription may ask for: 1 L. Far above any
/// syringe; the pump checks the loaded syringe's own capacity as well.
pub const MAX_VOLUME_UL: u32 = 1_000_000;

/// Longest username, in bytes of UTF-8.
pub const USERNAME_MAX: usize = 64;
/// Longest password, in bytes of UTF-8. Long enough for passphrases, short
/// enough that hashing cannot be used to exhaust the server.
pub const PASSWORD_MAX: usize = 128;
/// Longest first or last name, in bytes of UTF-8.
pub const NAME_MAX: usize = 64;
/// Longest institution name, in bytes of UTF-8.
pub const INSTITUTION_MAX: usize = 128;
/// Longest `message` in an error body, in bytes of UTF-8.
pub const MESSAGE_MAX: usize = 160;

/// Most events one report may carry. The pump's outbox sends at most this
/// many per request; the server refuses larger batches.
pub const MAX_EVENTS_PER_REPORT: usize = 128;
/// Largest `uptime_ms` accepted: 2^53 - 1, the largest integer every JSON
/// implementation represents exactly (about 285,000 years of uptime).
pub const MAX_UPTIME_MS: u64 = (1 << 53) - 1;
/// Largest heart rate a report may carry, beats per minute.
pub const MAX_HEART_RATE_BPM: u16 = 350;
/// Largest SpO2, percent.
pub const MAX_SPO2_PCT: u8 = 100;
/// Largest tremor score (a 0 to 100 scale from the motion sensor).
pub const MAX_TREMOR_SCORE: u8 = 100;
