//! `POST /api/v1/device/report`: events from the pump, acknowledged durably.

use crate::limits::MAX_EVENTS_PER_REPORT;
use crate::{Event, PatientId, Token};

/// A batch of events, as the server decodes it.
///
/// The batch is idempotent by (device, `seq`): sending it again after a lost
/// answer stores nothing twice, so a pump resends until it gets a 200.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// The patient from the login answer.
    pub patient_id: PatientId,
    /// Up to 128 events, in increasing `seq` order.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Event>, max_items = 128))]
    pub events: heapless::Vec<Event, MAX_EVENTS_PER_REPORT>,
}

/// The same batch as a pump encodes it, borrowing events straight from its
/// outbox so that nothing is copied. Encodes to exactly the JSON that
/// [`ReportRequest`] decodes.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ReportRequestRef<'a> {
    /// The patient from the login answer.
    pub patient_id: PatientId,
    /// The events to send, oldest first.
    pub events: &'a [Event],
}

/// Answer to a report: how many events were new, how many were already
/// stored, and the next token. A 200 means every event in the batch is on
/// durable storage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportResponse {
    /// Events stored by this request.
    pub accepted: u32,
    /// Events that were already stored (a resent batch).
    pub duplicates: u32,
    /// Single-use token for the next request.
    pub token: Token,
    /// Seconds until `token` expires.
    pub expires_in_s: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventBody, StateChange};

    #[test]
    fn borrowed_and_owned_forms_agree() {
        let events = [
            Event {
                seq: 7,
                uptime_ms: 1000,
                body: EventBody::State(StateChange::Started),
            },
            Event {
                seq: 8,
                uptime_ms: 2000,
                body: EventBody::State(StateChange::Completed),
            },
        ];
        let json = serde_json::to_string(&ReportRequestRef {
            patient_id: PatientId(3),
            events: &events,
        })
        .unwrap();
        let back: ReportRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.events.as_slice(), &events);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn refuses_oversized_batches() {
        let one = r#"{"seq":1,"uptime_ms":1,"kind":"state","state":"paused"}"#;
        let many = std::vec![one; MAX_EVENTS_PER_REPORT + 1].join(",");
        let json = std::format!(r#"{{"patient_id":1,"events":[{many}]}}"#);
        assert!(serde_json::from_str::<ReportRequest>(&json).is_err());
    }
}
