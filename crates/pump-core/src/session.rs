//! The link to the server: token chain, login, back-off.

use infusion_protocol::{ErrorCode, PatientId, Token};

/// Why a request got no useful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer: connection refused, timeout, unparseable response.
    Network,
    /// The server answered with an error code.
    Api(ErrorCode),
    /// An index answer that is not the server's: its signature does not
    /// verify for this patient and device, or its version is older than
    /// one already applied.
    Unverified,
}

/// What request, if any, is waiting for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InFlight {
    None,
    Login,
    Index,
    /// A report carrying events up to and including this seq.
    Report(u32),
}

/// The session with the server. The token lives only here, in RAM.
#[derive(Debug, Clone)]
pub struct Session {
    pub(crate) token: Option<Token>,
    pub(crate) patient: Option<PatientId>,
    pub(crate) in_flight: InFlight,
    /// No request before this time (back-off).
    pub(crate) not_before_ms: u64,
    /// Next index poll.
    pub(crate) next_poll_ms: u64,
    /// Consecutive failures, for back-off and `comm_lost`.
    pub(crate) failures: u32,
    rng: u32,
}

impl Session {
    pub(crate) fn new(seed: u32) -> Self {
        Session {
            token: None,
            patient: None,
            in_flight: InFlight::None,
            not_before_ms: 0,
            next_poll_ms: 0,
            failures: 0,
            rng: seed | 1,
        }
    }

    /// True while logged in (a token is held).
    pub fn is_logged_in(&self) -> bool {
        self.token.is_some()
    }

    /// The patient this pump serves, once logged in.
    pub fn patient(&self) -> Option<PatientId> {
        self.patient
    }

    /// Consecutive failed requests.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Exponential back-off with jitter: the delay doubles per failure from
    /// `min_ms` up to `max_ms`, and a random half of it is taken off so that
    /// many pumps that lost the server together do not return together.
    pub(crate) fn backoff(&mut self, now_ms: u64, min_ms: u64, max_ms: u64) {
        self.failures = self.failures.saturating_add(1);
        let shift = self.failures.min(20) - 1;
        let delay = min_ms.saturating_mul(1 << shift).min(max_ms).max(1);
        // xorshift32: cheap, no_std, and only jitter depends on it.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let half = delay / 2;
        self.not_before_ms = now_ms + half + u64::from(self.rng) % (half + 1);
    }

    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
    }

    pub(crate) fn logout(&mut self) {
        self.token = None;
    }
}
