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
    /// The highest number that has gone out in a report (this boot).
    sent_through: Option<u32>,
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
            sent_through: None,
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

    /// Notes that every event up to `seq` has gone out in a report: the
    /// server may hold those under their numbers, so they keep them.
    pub fn mark_sent(&mut self, seq: u32) {
        self.sent_through = Some(self.sent_through.map_or(seq, |s| s.max(seq)));
    }

    /// Takes the server's word (`next_seq` at login) for where numbering
    /// stands. An event that never went out in a report cannot be on the
    /// server, so it may take any free number; one numbered below
    /// `next_seq` collides with a stored event (the counter was lost:
    /// wiped flash, a restart without it, a replacement board under the
    /// same binding). Then every unsent event is numbered again from
    /// `next_seq` (or past the last sent, if higher), in order, and new
    /// events follow. Sent events keep their numbers: the server may hold
    /// them already (their answer was lost) and will count them as
    /// repeats. Returns true when anything was renumbered.
    ///
    /// Firmware that keeps its outbox across a reboot must keep which
    /// events were sent with it, or a sent event could be stored twice.
    pub fn continue_from(&mut self, next_seq: u32) -> bool {
        let start = match self.sent_through {
            Some(s) => next_seq.max(s.saturating_add(1)),
            None => next_seq,
        };
        let first_unsent = match self.sent_through {
            Some(s) => self.events.iter().position(|e| e.seq > s),
            None => Some(0),
        }
        .unwrap_or(self.events.len());
        let unsent = &mut self.events[first_unsent..];
        let behind = unsent.first().map_or(self.next_seq, |e| e.seq) < start;
        if !behind {
            return false;
        }
        let mut seq = start;
        for e in unsent.iter_mut() {
            e.seq = seq;
            seq = seq.wrapping_add(1);
        }
        self.next_seq = seq;
        true
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

    fn seqs<const N: usize>(o: &Outbox<N>) -> heapless::Vec<u32, N> {
        o.batch().iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_lost_counter_continues_where_the_server_stands() {
        let mut o: Outbox<8> = Outbox::new(1);
        for i in 0..4 {
            o.push(i, progress(i as u32));
        }
        o.push(10, EventBody::Alarm(Alarm::MotorFault));
        // The server holds 1..=3 from before the restart: the counter (6)
        // passed them, but the waiting events under them never went out.
        assert!(o.continue_from(4));
        assert_eq!(&seqs(&o)[..], &[4, 5, 6, 7, 8]);
        assert_eq!(o.batch()[4].body, EventBody::Alarm(Alarm::MotorFault));
        assert_eq!(o.push(30, progress(6)), 9);
        assert!(!o.continue_from(4), "numbered where the server stands");
    }

    #[test]
    fn sent_events_keep_their_numbers() {
        let mut o: Outbox<8> = Outbox::new(10);
        o.push(1, progress(1));
        o.push(2, progress(2));
        o.mark_sent(11);
        o.push(3, progress(3));
        // The answer to 10..=11 was lost; the server stored them (next 12).
        assert!(!o.continue_from(12));
        assert_eq!(&seqs(&o)[..], &[10, 11, 12]);
        // Or another board's events reach 50: the unsent one moves past.
        assert!(o.continue_from(50));
        assert_eq!(&seqs(&o)[..], &[10, 11, 50]);
        assert_eq!(o.next_seq(), 51);
        // An empty outbox with a counter behind moves the counter.
        let mut o: Outbox<8> = Outbox::new(1);
        assert!(o.continue_from(7));
        assert_eq!(o.push(0, progress(0)), 7);
    }

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
