//! Numbered events waiting for the server's acknowledgement.

use infusion_protocol::limits::MAX_EVENTS_PER_REPORT;
use infusion_protocol::{Event, EventBody};

/// A fixed-capacity queue of numbered events. Events leave it only when a
/// report containing them is answered 200, so nothing is lost across
/// retries. When it is full the oldest progress event makes room (progress
/// is cumulative, the next one says it all); alarms and state changes are
/// dropped last.
#[derive(Debug, Clone)]
pub struct Outbox<const N: usize> {
    events: heapless::Vec<Event, N>,
    next_seq: u32,
    dropped: u32,
}

impl<const N: usize> Outbox<N> {
    /// An empty outbox whose first event gets `first_seq`. A device keeps
    /// its sequence counter across reboots (in flash), so that the server's
    /// (device, seq) de-duplication never swallows a new event.
    pub fn new(first_seq: u32) -> Self {
        Outbox {
            events: heapless::Vec::new(),
            next_seq: first_seq,
            dropped: 0,
        }
    }

    /// Queues an event and returns its sequence number.
    pub fn push(&mut self, uptime_ms: u64, body: EventBody) -> u32 {
        if self.events.is_full() {
            let victim = self
                .events
                .iter()
                .position(|e| matches!(e.body, EventBody::Progress(_)))
                .unwrap_or(0);
            if victim < self.events.len() {
                self.events.remove(victim);
            }
            self.dropped = self.dropped.saturating_add(1);
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        // Cannot fail: room was made above.
        let _ = self.events.push(Event {
            seq,
            uptime_ms,
            body,
        });
        seq
    }

    /// The oldest events, as many as one report may carry.
    pub fn batch(&self) -> &[Event] {
        let n = self.events.len().min(MAX_EVENTS_PER_REPORT);
        &self.events[..n]
    }

    /// Removes every event up to and including `seq`: the server has them.
    pub fn ack_through(&mut self, seq: u32) {
        self.events.retain(|e| e.seq > seq);
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// True when an alarm or state change waits (worth reporting at once).
    pub fn has_urgent(&self) -> bool {
        self.events
            .iter()
            .any(|e| !matches!(e.body, EventBody::Progress(_) | EventBody::Vitals(_)))
    }

    /// The sequence number the next event will get (to persist).
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Events dropped because the outbox was full or refused by the server.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Counts events given up on for another reason than a full outbox.
    pub fn count_dropped(&mut self, n: u32) {
        self.dropped = self.dropped.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infusion_protocol::{Alarm, Progress};

    fn progress(v: u32) -> EventBody {
        EventBody::Progress(Progress {
            delivered_ul: v,
            rate_ul_h: 1,
            index_version: 1,
        })
    }

    #[test]
    fn full_outbox_drops_progress_before_alarms() {
        let mut o: Outbox<3> = Outbox::new(10);
        o.push(0, EventBody::Alarm(Alarm::BatteryLow));
        o.push(1, progress(1));
        o.push(2, progress(2));
        o.push(3, progress(3));
        let seqs: std::vec::Vec<u32> = o.batch().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [10, 12, 13]);
        assert_eq!(o.dropped(), 1);
        o.ack_through(12);
        assert_eq!(o.batch().len(), 1);
        assert_eq!(o.next_seq(), 14);
    }
}
