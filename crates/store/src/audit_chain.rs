//! The audit log's hash chain, and its verification.
//!
//! Every audit row carries the SHA-256 of the row before it (`prev_hash`)
//! and its own hash over that and its fields; a one-row head table keeps
//! the number of rows, the last id and the last hash, updated in the same
//! transaction as each insert. Both backends forbid `UPDATE` and `DELETE`
//! on the table with triggers, so the application cannot rewrite history;
//! the chain is what catches someone who went around the application (a
//! database administrator dropping the triggers, or an edited SQLite file).
//! [`Verifier`] walks the rows in id order and names every row that was
//! edited, inserted or deleted.
//!
//! An attacker who can write the database and knows this scheme can
//! recompute the whole chain; recording the head hash that
//! `infusion admin verify-audit` prints somewhere else (a ticket, another
//! system's log) and comparing later turns that into a detected change too.

use sha2::{Digest, Sha256};

use crate::NewAudit;

/// The `prev_hash` of the first row.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of an audit row: SHA-256 over a version tag, the previous
/// row's hash and each field, every variable-length field prefixed by its
/// length, so that no two different rows encode alike.
pub fn chain_hash(prev: &[u8; 32], e: &NewAudit) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"infusion-audit-v1\0");
    h.update(prev);
    h.update(e.at_ms.to_be_bytes());
    for text in [e.actor.as_str(), e.action.as_str(), e.detail.as_str()] {
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    match e.patient_id {
        Some(p) => {
            h.update([1]);
            h.update(p.0.to_be_bytes());
        }
        None => h.update([0]),
    }
    h.finalize().into()
}

/// An audit row as stored, with its chain columns (`None` where a row was
/// written without them: never by this program after the chain's
/// migration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedAudit {
    /// Row id; the chain runs in id order.
    pub id: i64,
    /// The row's fields.
    pub entry: NewAudit,
    /// The previous row's hash as recorded in this row.
    pub prev_hash: Option<[u8; 32]>,
    /// This row's hash as recorded.
    pub hash: Option<[u8; 32]>,
}

/// The chain's head: what the last insert left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    /// Rows in the chain.
    pub rows: u64,
    /// The last row's id (0 when empty).
    pub last_id: i64,
    /// The last row's hash ([`GENESIS`] when empty).
    pub hash: [u8; 32],
}

/// One thing wrong with the audit log, naming the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFault {
    /// The row's fields no longer match its hash: edited in place.
    Edited {
        /// The row.
        id: i64,
    },
    /// The row is not part of the chain: the row after it links to the
    /// row before it.
    Inserted {
        /// The row.
        id: i64,
    },
    /// The link between two rows is broken: rows between them were
    /// deleted, or the first was rewritten with a new hash.
    Broken {
        /// The last row before the break.
        after_id: Option<i64>,
        /// The first row after it.
        before_id: i64,
    },
    /// A row without chain columns: written around the application.
    Unsealed {
        /// The row.
        id: i64,
    },
    /// The head names rows that are not there: rows at the end were
    /// deleted.
    TailMissing {
        /// The last row present.
        last_present: Option<i64>,
        /// The last row the head records.
        head_last_id: i64,
    },
    /// Rows after the head's last row: appended around the application.
    AfterHead {
        /// The row.
        id: i64,
    },
    /// The head's row count or hash disagrees with the rows.
    HeadMismatch,
}

impl std::fmt::Display for AuditFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditFault::Edited { id } => {
                write!(f, "row {id} was edited: its contents do not match its hash")
            }
            AuditFault::Inserted { id } => write!(
                f,
                "row {id} was inserted: the next row links to the row before it"
            ),
            AuditFault::Broken {
                after_id: Some(a),
                before_id,
            } => write!(
                f,
                "the chain breaks between rows {a} and {before_id}: rows between them were deleted, or row {a} was rewritten"
            ),
            AuditFault::Broken {
                after_id: None,
                before_id,
            } => write!(
                f,
                "row {before_id} does not start the chain: rows before it were deleted"
            ),
            AuditFault::Unsealed { id } => {
                write!(f, "row {id} has no hash: written around the application")
            }
            AuditFault::TailMissing {
                last_present,
                head_last_id,
            } => write!(
                f,
                "rows after {} up to {head_last_id} were deleted",
                last_present.map_or_else(|| "the start".to_owned(), |i| i.to_string())
            ),
            AuditFault::AfterHead { id } => write!(
                f,
                "row {id} follows the recorded head: appended around the application"
            ),
            AuditFault::HeadMismatch => {
                write!(f, "the head's row count or hash does not match the rows")
            }
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// Rows read.
    pub rows: u64,
    /// The recorded head (its hash is the anchor to keep elsewhere).
    pub head: AuditHead,
    /// Everything wrong, in row order; empty when the log is intact.
    pub faults: Vec<AuditFault>,
}

/// Walks the rows in id order (fed a page at a time) and collects faults.
#[derive(Debug, Default)]
pub struct Verifier {
    rows: u64,
    last: Option<(i64, [u8; 32])>,
    before_last: Option<[u8; 32]>,
    faults: Vec<AuditFault>,
    last_id: Option<i64>,
}

impl Verifier {
    /// Checks the next row.
    pub fn push(&mut self, row: &ChainedAudit) {
        self.rows += 1;
        self.last_id = Some(row.id);
        let (Some(prev), Some(hash)) = (row.prev_hash, row.hash) else {
            self.faults.push(AuditFault::Unsealed { id: row.id });
            return;
        };
        if chain_hash(&prev, &row.entry) != hash {
            self.faults.push(AuditFault::Edited { id: row.id });
        }
        let expected = self.last.map_or(GENESIS, |(_, h)| h);
        if prev != expected {
            match self.last {
                Some((last_id, _)) if Some(prev) == self.before_last => {
                    self.faults.push(AuditFault::Inserted { id: last_id });
                }
                last => self.faults.push(AuditFault::Broken {
                    after_id: last.map(|(id, _)| id),
                    before_id: row.id,
                }),
            }
        }
        self.before_last = Some(expected);
        self.last = Some((row.id, hash));
    }

    /// The id of the last row pushed, to read the next page after.
    pub fn last_id(&self) -> i64 {
        self.last_id.unwrap_or(0)
    }

    /// Compares the end of the chain with the recorded head.
    pub fn finish(mut self, head: AuditHead, after_head: &[i64]) -> AuditVerification {
        let last_present = self.last_id;
        if last_present.unwrap_or(0) < head.last_id {
            self.faults.push(AuditFault::TailMissing {
                last_present,
                head_last_id: head.last_id,
            });
        } else {
            let counted = self.rows - after_head.len() as u64;
            let hash_ok = match self.last {
                Some((id, h)) if id == head.last_id => h == head.hash,
                // The last chained row is after the head: compare nothing
                // here, those rows are reported one by one.
                _ => true,
            };
            // A break found in the walk explains a wrong count already.
            if (counted != head.rows || !hash_ok) && self.faults.is_empty() {
                self.faults.push(AuditFault::HeadMismatch);
            }
        }
        self.faults
            .extend(after_head.iter().map(|&id| AuditFault::AfterHead { id }));
        AuditVerification {
            rows: self.rows,
            head,
            faults: self.faults,
        }
    }
}

/// Reads the whole audit log of `store` and verifies it. Rows appended
/// while it reads are taken in, up to the head read at the end.
pub async fn verify_audit(store: &dyn crate::Store) -> crate::StoreResult<AuditVerification> {
    const PAGE: u32 = 10_000;
    let mut v = Verifier::default();
    let mut rows = Vec::new();
    loop {
        let page = store.audit_chain(v.last_id(), PAGE).await?;
        let done = page.len() < PAGE as usize;
        for row in &page {
            v.push(row);
        }
        rows.extend(page.into_iter().map(|r| r.id));
        if !done {
            continue;
        }
        let head = store.audit_head().await?;
        if head.last_id > v.last_id() {
            // Appended since the last page: read on.
            let more = store.audit_chain(v.last_id(), PAGE).await?;
            if !more.is_empty() {
                for row in &more {
                    v.push(row);
                }
                rows.extend(more.into_iter().map(|r| r.id));
                continue;
            }
        }
        let after_head: Vec<i64> = rows.into_iter().filter(|&id| id > head.last_id).collect();
        return Ok(v.finish(head, &after_head));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditAction;
    use infusion_protocol::PatientId;

    fn entry(i: i64) -> NewAudit {
        NewAudit::of(
            i,
            "user:doc",
            AuditAction::PrescriptionChanged,
            Some(PatientId(7)),
            format!("version {i}"),
        )
    }

    /// A chain of `n` rows, ids 1..=n, and its head.
    fn chain(n: i64) -> (Vec<ChainedAudit>, AuditHead) {
        let mut prev = GENESIS;
        let mut rows = Vec::new();
        for id in 1..=n {
            let e = entry(id);
            let hash = chain_hash(&prev, &e);
            rows.push(ChainedAudit {
                id,
                entry: e,
                prev_hash: Some(prev),
                hash: Some(hash),
            });
            prev = hash;
        }
        let head = AuditHead {
            rows: n as u64,
            last_id: n,
            hash: prev,
        };
        (rows, head)
    }

    fn verify(rows: &[ChainedAudit], head: AuditHead) -> Vec<AuditFault> {
        let mut v = Verifier::default();
        rows.iter().for_each(|r| v.push(r));
        let after: Vec<i64> = rows
            .iter()
            .map(|r| r.id)
            .filter(|&id| id > head.last_id)
            .collect();
        v.finish(head, &after).faults
    }

    #[test]
    fn an_intact_chain_has_no_faults() {
        let (rows, head) = chain(20);
        assert_eq!(verify(&rows, head), []);
        assert_eq!(verify(&[], chain(0).1), []);
    }

    #[test]
    fn an_edited_row_is_named() {
        let (mut rows, head) = chain(10);
        rows[4].entry.detail = "version 999".into();
        assert_eq!(verify(&rows, head), [AuditFault::Edited { id: 5 }]);
    }

    #[test]
    fn a_rewritten_row_breaks_the_link_after_it() {
        let (mut rows, head) = chain(10);
        rows[4].entry.detail = "version 999".into();
        rows[4].hash = Some(chain_hash(&rows[4].prev_hash.unwrap(), &rows[4].entry));
        assert_eq!(
            verify(&rows, head),
            [AuditFault::Broken {
                after_id: Some(5),
                before_id: 6
            }]
        );
    }

    #[test]
    fn a_deleted_row_is_found_between_its_neighbours() {
        let (mut rows, head) = chain(10);
        rows.remove(4);
        assert_eq!(
            verify(&rows, head),
            [AuditFault::Broken {
                after_id: Some(4),
                before_id: 6
            }]
        );
        let (mut rows, head) = chain(10);
        rows.remove(0);
        assert_eq!(
            verify(&rows, head),
            [AuditFault::Broken {
                after_id: None,
                before_id: 2
            }]
        );
    }

    #[test]
    fn an_inserted_row_is_named_even_when_well_hashed() {
        let (mut rows, head) = chain(10);
        let prev = rows[4].hash.unwrap();
        let fake = entry(55);
        rows.insert(
            5,
            ChainedAudit {
                id: 55, // ids need not be in order for the walk
                prev_hash: Some(prev),
                hash: Some(chain_hash(&prev, &fake)),
                entry: fake,
            },
        );
        let faults = verify(&rows, head);
        assert_eq!(faults[0], AuditFault::Inserted { id: 55 });
    }

    #[test]
    fn tail_deletions_and_appends_are_caught_by_the_head() {
        let (mut rows, head) = chain(10);
        rows.truncate(7);
        assert_eq!(
            verify(&rows, head),
            [AuditFault::TailMissing {
                last_present: Some(7),
                head_last_id: 10
            }]
        );
        let (mut rows, head) = chain(10);
        let prev = rows[9].hash.unwrap();
        let e = entry(11);
        rows.push(ChainedAudit {
            id: 11,
            hash: Some(chain_hash(&prev, &e)),
            prev_hash: Some(prev),
            entry: e,
        });
        assert_eq!(verify(&rows, head), [AuditFault::AfterHead { id: 11 }]);
        let (mut rows, head) = chain(3);
        rows.push(ChainedAudit {
            id: 4,
            entry: entry(4),
            prev_hash: None,
            hash: None,
        });
        assert_eq!(
            verify(&rows, head),
            [
                AuditFault::Unsealed { id: 4 },
                AuditFault::AfterHead { id: 4 }
            ]
        );
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = entry(1);
        let h = chain_hash(&GENESIS, &base);
        let mut variants = vec![base.clone(); 5];
        variants[0].at_ms += 1;
        variants[1].actor.push('x');
        variants[2].action = AuditAction::Alarm;
        variants[3].patient_id = None;
        variants[4].detail.push('x');
        for v in &variants {
            assert_ne!(chain_hash(&GENESIS, v), h, "{v:?}");
        }
        assert_ne!(chain_hash(&[1; 32], &base), h);
        // Length prefixes: moving a character between fields changes the hash.
        let mut a = base.clone();
        a.actor = "ab".into();
        a.detail = "c".into();
        let mut b = base;
        b.actor = "a".into();
        b.detail = "bc".into();
        assert_ne!(chain_hash(&GENESIS, &a), chain_hash(&GENESIS, &b));
    }
}
