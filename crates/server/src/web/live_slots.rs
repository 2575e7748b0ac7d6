//! How many live streams one session holds open (red team round 2: one
//! session opened 1,000, each a task and a connection). Counted per
//! instance; a page gets its stream back when another closes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use infusion_store::TokenHash;

/// Streams one session may hold at once: more tabs than a person reads,
/// and as many connections as a browser opens to one host over HTTP/1.1.
pub const PER_SESSION: usize = 6;

/// Open streams per session.
#[derive(Debug, Default)]
pub struct LiveSlots {
    open: Mutex<HashMap<TokenHash, usize>>,
}

/// One open stream's place; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<LiveSlots>,
    session: TokenHash,
}

impl LiveSlots {
    /// A place for one more stream of `session`, if it holds fewer than
    /// [`PER_SESSION`].
    pub fn take(self: &Arc<Self>, session: TokenHash) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(session).or_insert(0);
        if *n >= PER_SESSION {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            session,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_holds_six_streams_and_gets_one_back_when_one_closes() {
        let slots = Arc::new(LiveSlots::default());
        let a = TokenHash([1; 32]);
        let held: Vec<_> = (0..PER_SESSION).map(|_| slots.take(a).unwrap()).collect();
        assert!(slots.take(a).is_none());
        assert!(
            slots.take(TokenHash([2; 32])).is_some(),
            "another session is not held up"
        );
        drop(held);
        assert!(slots.take(a).is_some());
        assert!(slots.open.lock().unwrap().len() <= 1);
    }
}
