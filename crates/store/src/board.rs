//! What a board reads about many patients at once: a physician's
//! dashboard, a nurse's ward. Each patient's newest events, open alarms
//! and pending suggestions come in three statements whatever the number of
//! patients (they were three per patient, for every live refresh of every
//! open board).

use std::collections::HashMap;

use async_trait::async_trait;
use infusion_protocol::PatientId;

use crate::{StoreResult, StoredEvent};

/// How many of each patient's newest events a board reads: what its
/// state, delivery and battery columns are read from.
pub const BOARD_RECENT: u32 = 50;

/// The board's reads, by patient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Board {
    /// Each patient's newest events, newest first.
    pub recent: HashMap<PatientId, Vec<StoredEvent>>,
    /// Each patient's open alarms, most urgent first.
    pub alarms: HashMap<PatientId, Vec<StoredEvent>>,
    /// How many suggestions wait for each patient's physician.
    pub pending: HashMap<PatientId, usize>,
}

impl Board {
    /// Adds `event` of `patient` to `recent` or `alarms` (as `into`
    /// says), as the rows come.
    pub fn push(
        into: &mut HashMap<PatientId, Vec<StoredEvent>>,
        patient: PatientId,
        event: StoredEvent,
    ) {
        into.entry(patient).or_default().push(event);
    }

    /// Puts each patient's open alarms in the order of every alarm list.
    pub fn sort_alarms(&mut self) {
        for list in self.alarms.values_mut() {
            let taken = std::mem::take(list);
            *list = crate::by_priority(taken);
        }
    }
}

/// Reading boards; one read per call.
#[async_trait]
pub trait Boards: Send + Sync {
    /// The board of `patients`, each with its newest `recent` events.
    async fn board(&self, patients: &[PatientId], recent: u32) -> StoreResult<Board>;
}
