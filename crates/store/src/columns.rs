//! One row layout per type, decoded once for both backends.
//!
//! A backend hands a row over as [`Columns`] (typed reads by position);
//! each type that comes back from the database has its select list and
//! its decoder here, so that the two backends cannot drift in how they
//! read a prescription or an account (they had: one decoded stored events
//! directly, the other through the protocol's checks). A row that neither
//! backend could have written is a [`StoreError::Backend`] fault, never a
//! panic.

use infusion_protocol::{HexBytes, PatientId, PatientLimits};

use crate::{
    AccountId, AccountOverview, AccountRecord, AuditRecord, BoundDevice, DeviceId, DoseLimits,
    Drug, DrugId, Limits, LoginRecord, NewAudit, NewDrug, NewSuggestion, PatientIdentifiers,
    PatientNote, PatientSummary, Prescription, PresentedToken, StoreError, StoreResult, Suggestion,
    TokenStatus, Ward, WardId, stored_action, stored_mac, stored_role, stored_state,
};

/// A database row, read by column position.
pub trait Columns {
    /// An integer column of any width; `None` for NULL.
    fn int(&self, i: usize) -> StoreResult<Option<i64>>;
    /// A text column; `None` for NULL.
    fn text(&self, i: usize) -> StoreResult<Option<String>>;
    /// A byte column; `None` for NULL.
    fn bytes(&self, i: usize) -> StoreResult<Option<Vec<u8>>>;
    /// A truth value (a boolean, or SQLite's 0 and 1).
    fn flag(&self, i: usize) -> StoreResult<bool>;

    /// A non-null integer.
    fn i64(&self, i: usize) -> StoreResult<i64> {
        self.int(i)?.ok_or_else(|| null(i))
    }

    /// A non-null integer that must fit a `u32` (volumes, rates,
    /// versions, sequence numbers).
    fn u32(&self, i: usize) -> StoreResult<u32> {
        let v = self.i64(i)?;
        u32::try_from(v).map_err(|_| StoreError::Backend(format!("column {i} out of range: {v}")))
    }

    /// A non-null text.
    fn string(&self, i: usize) -> StoreResult<String> {
        self.text(i)?.ok_or_else(|| null(i))
    }

    /// A nullable fixed-size byte column (`what` names it in the fault).
    fn array<const N: usize>(&self, i: usize, what: &str) -> StoreResult<Option<[u8; N]>> {
        self.bytes(i)?
            .map(|v| {
                <[u8; N]>::try_from(v)
                    .map_err(|_| StoreError::Backend(format!("stored {what} is not {N} bytes")))
            })
            .transpose()
    }
}

fn null(i: usize) -> StoreError {
    StoreError::Backend(format!("column {i} is unexpectedly NULL"))
}

/// A patient id as stored: `None` for one no row can have (beyond
/// `i64`), which finds nothing.
pub fn stored_patient(id: PatientId) -> Option<i64> {
    i64::try_from(id.0).ok()
}

/// A query's patient filter as stored: `Some(None)` for every patient,
/// `Some(Some(id))` for one, `None` for an id no row can have (the answer
/// is empty).
pub fn patient_filter(patient: Option<PatientId>) -> Option<Option<i64>> {
    match patient {
        Some(p) => stored_patient(p).map(Some),
        None => Some(None),
    }
}

/// A stored patient id.
pub fn patient_at(c: &impl Columns, i: usize) -> StoreResult<PatientId> {
    Ok(PatientId(c.i64(i)? as u64))
}

/// A ward from two columns from `i`, its id and name; `None` when the id
/// is NULL (no ward).
pub fn ward_at(c: &impl Columns, i: usize) -> StoreResult<Option<Ward>> {
    Ok(match (c.int(i)?, c.text(i + 1)?) {
        (Some(id), Some(name)) => Some(Ward {
            id: WardId(id),
            name,
        }),
        _ => None,
    })
}

/// Three limit columns from `i`: minimum rate, maximum rate, maximum volume.
pub fn limits_at(c: &impl Columns, i: usize) -> StoreResult<PatientLimits> {
    Ok(PatientLimits {
        min_rate_ul_h: c.u32(i)?,
        max_rate_ul_h: c.u32(i + 1)?,
        max_volume_ul: c.u32(i + 2)?,
    })
}

impl Limits {
    /// The select list of a patient's limits, over `limits l`.
    pub const COLUMNS: &'static str = "l.min_rate_ul_h, l.max_rate_ul_h, l.max_volume_ul,
        l.soft_min_rate_ul_h, l.soft_max_rate_ul_h, l.soft_max_volume_ul, l.is_set";

    /// Limits from their seven columns from `i`.
    pub fn at(c: &impl Columns, i: usize) -> StoreResult<Limits> {
        Ok(Limits {
            hard: limits_at(c, i)?,
            soft: limits_at(c, i + 3)?,
            set: c.flag(i + 6)?,
        })
    }
}

impl Prescription {
    /// The select list of a prescription row.
    pub const COLUMNS: &'static str =
        "version, volume_ul, rate_ul_h, state, created_at_ms, created_by, fetched_at_ms, drug_id";

    /// A prescription from its eight columns from `i`; `None` when the
    /// version is NULL (a left join found none).
    pub fn at(c: &impl Columns, i: usize) -> StoreResult<Option<Prescription>> {
        if c.int(i)?.is_none() {
            return Ok(None);
        }
        Ok(Some(Prescription {
            version: c.u32(i)?,
            volume_ul: c.u32(i + 1)?,
            rate_ul_h: c.u32(i + 2)?,
            state: stored_state(&c.string(i + 3)?)?,
            created_at_ms: c.i64(i + 4)?,
            created_by: c.string(i + 5)?,
            fetched_at_ms: c.int(i + 6)?,
            drug: c.int(i + 7)?.map(DrugId),
        }))
    }

    /// A row selected with [`Prescription::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<Prescription> {
        Self::at(c, 0)?.ok_or_else(|| null(0))
    }
}

impl PatientSummary {
    /// The select list of a summary, over `patients p`, `accounts a` (the
    /// patient's), `accounts ph` (the physician's), `devices d` (the bound
    /// one, left joined), `limits l` and `rx` (the newest prescription,
    /// left joined).
    pub const COLUMNS: &'static str = "p.id, a.username, a.first_name, a.last_name, ph.username,
        d.mac, d.last_seen_ms, l.min_rate_ul_h, l.max_rate_ul_h, l.max_volume_ul,
        l.soft_min_rate_ul_h, l.soft_max_rate_ul_h, l.soft_max_volume_ul, l.is_set,
        rx.version, rx.volume_ul, rx.rate_ul_h, rx.state, rx.created_at_ms, rx.created_by,
        rx.fetched_at_ms, rx.drug_id, p.record_number, p.birth_date, p.note, p.note_set_at_ms,
        (SELECT MIN(s.last_heard_ms) FROM server_alarms s
         WHERE s.patient_id = p.id AND s.cleared_at_ms IS NULL),
        p.ward_id, (SELECT w.name FROM wards w WHERE w.id = p.ward_id),
        (SELECT n.username FROM accounts n WHERE n.id = p.nurse_id)";

    /// A row selected with [`PatientSummary::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<PatientSummary> {
        Ok(PatientSummary {
            patient_id: patient_at(c, 0)?,
            identifiers: PatientIdentifiers {
                record_number: c.text(22)?,
                birth_date: c.text(23)?,
            },
            username: c.string(1)?,
            first_name: c.string(2)?,
            last_name: c.string(3)?,
            physician_username: c.string(4)?,
            device: c.text(5)?.as_deref().map(stored_mac).transpose()?,
            last_contact_ms: c.int(6)?,
            limits: Limits::at(c, 7)?,
            prescription: Prescription::at(c, 14)?,
            note: match (c.text(24)?, c.int(25)?) {
                (Some(text), Some(set_at_ms)) => Some(PatientNote { text, set_at_ms }),
                _ => None,
            },
            silent_since_ms: c.int(26)?,
            ward: ward_at(c, 27)?,
            nurse: c.text(29)?,
        })
    }
}

/// Three dose-limit columns from `i`: lowest and highest µg/h, largest µg.
fn dose_limits_at(c: &impl Columns, i: usize) -> StoreResult<DoseLimits> {
    Ok(DoseLimits {
        min_ug_h: c.u32(i)?,
        max_ug_h: c.u32(i + 1)?,
        max_ug: c.u32(i + 2)?,
    })
}

impl Drug {
    /// The select list of a drug, over `drugs g`.
    pub const COLUMNS: &'static str = "g.id, g.name, g.concentration_ug_ml,
        g.hard_min_ug_h, g.hard_max_ug_h, g.hard_max_ug, g.soft_min_ug_h, g.soft_max_ug_h,
        g.soft_max_ug, g.withdrawn_at_ms IS NOT NULL";

    /// A row selected with [`Drug::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<Drug> {
        Ok(Drug {
            id: DrugId(c.i64(0)?),
            drug: NewDrug {
                name: c.string(1)?,
                concentration_ug_ml: c.u32(2)?,
                hard: dose_limits_at(c, 3)?,
                soft: dose_limits_at(c, 6)?,
            },
            withdrawn: c.flag(9)?,
        })
    }
}

impl AccountRecord {
    /// The select list of an account, over `accounts a`.
    pub const COLUMNS: &'static str = "a.id, a.username, a.role, a.first_name, a.last_name,
        a.password_hash, a.disabled_at_ms, a.must_change_password,
        EXISTS (SELECT 1 FROM second_factors f WHERE f.account_id = a.id),
        COALESCE((SELECT i.time_zone FROM institutions i WHERE i.id = a.institution_id), 'UTC'),
        (SELECT n.ward_id FROM nurses n WHERE n.account_id = a.id),
        (SELECT w.name FROM nurses n JOIN wards w ON w.id = n.ward_id WHERE n.account_id = a.id)";

    /// How many columns [`AccountRecord::COLUMNS`] selects.
    pub const WIDTH: usize = 12;

    /// An account from its twelve columns from `i`.
    pub fn at(c: &impl Columns, i: usize) -> StoreResult<AccountRecord> {
        Ok(AccountRecord {
            account_id: AccountId(c.i64(i)?),
            username: c.string(i + 1)?,
            role: stored_role(&c.string(i + 2)?)?,
            first_name: c.string(i + 3)?,
            last_name: c.string(i + 4)?,
            password_hash: c.string(i + 5)?,
            disabled: c.int(i + 6)?.is_some(),
            must_change_password: c.flag(i + 7)?,
            has_second_factor: c.flag(i + 8)?,
            time_zone: c.string(i + 9)?,
            ward: ward_at(c, i + 10)?,
        })
    }
}

impl AccountOverview {
    /// The whole overview, by role then username (no parameters, so one
    /// statement serves both backends).
    pub const QUERY: &'static str = "SELECT a.username, a.role, a.first_name, a.last_name, i.name,
            ph.username, d.mac, a.disabled_at_ms,
            EXISTS (SELECT 1 FROM second_factors f WHERE f.account_id = a.id)
        FROM accounts a
        LEFT JOIN institutions i ON i.id = a.institution_id
        LEFT JOIN patients p ON p.account_id = a.id
        LEFT JOIN accounts ph ON ph.id = p.physician_id
        LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
        ORDER BY a.role, a.username";

    /// A row of [`AccountOverview::QUERY`].
    pub fn from_row(c: &impl Columns) -> StoreResult<AccountOverview> {
        Ok(AccountOverview {
            username: c.string(0)?,
            role: stored_role(&c.string(1)?)?,
            first_name: c.string(2)?,
            last_name: c.string(3)?,
            institution: c.text(4)?,
            physician: c.text(5)?,
            device: c.text(6)?,
            disabled: c.int(7)?.is_some(),
            has_second_factor: c.flag(8)?,
        })
    }
}

impl LoginRecord {
    /// The select list of a login record, over `accounts a`, `patients
    /// p`, `institutions i` and `devices d` (the bound one, left joined).
    pub const COLUMNS: &'static str = "a.id, p.id, a.password_hash, a.first_name, a.last_name,
        COALESCE(i.name, ''), d.id, d.mac, d.public_key, d.login_nonce";

    /// A row selected with [`LoginRecord::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<LoginRecord> {
        let device = match c.int(6)? {
            Some(id) => Some(BoundDevice {
                id: DeviceId(id),
                mac: stored_mac(&c.string(7)?)?,
                public_key: c.array(8, "device key")?.map(HexBytes),
                login_nonce: c.array(9, "login nonce")?,
            }),
            None => None,
        };
        Ok(LoginRecord {
            account_id: AccountId(c.i64(0)?),
            patient_id: patient_at(c, 1)?,
            password_hash: c.string(2)?,
            first_name: c.string(3)?,
            last_name: c.string(4)?,
            institution: c.string(5)?,
            device,
        })
    }
}

impl PresentedToken {
    /// The select list of a presented token, over `tokens t` joined with
    /// `devices d`, its device.
    pub const COLUMNS: &'static str = "t.device_id, t.patient_id, t.expires_at_ms, t.used_at_ms,
        d.mac, d.retired_at_ms IS NOT NULL, t.revoked_at_ms IS NOT NULL,
        t.generation <> d.token_generation, t.refused_count > 0";

    /// A row selected with [`PresentedToken::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<PresentedToken> {
        Ok(PresentedToken {
            device: DeviceId(c.i64(0)?),
            owner: patient_at(c, 1)?,
            expires_at_ms: c.i64(2)?,
            used_at_ms: c.int(3)?,
            mac: c.string(4)?,
            device_retired: c.flag(5)?,
            revoked: c.flag(6)?,
            stale: c.flag(7)?,
            refused_before: c.flag(8)?,
        })
    }
}

impl TokenStatus {
    /// The select list of a token's status, over `tokens`.
    pub const COLUMNS: &'static str =
        "device_id, patient_id, expires_at_ms, used_at_ms, revoked_at_ms";

    /// A row selected with [`TokenStatus::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<TokenStatus> {
        Ok(TokenStatus {
            device_id: DeviceId(c.i64(0)?),
            patient_id: patient_at(c, 1)?,
            expires_at_ms: c.i64(2)?,
            used_at_ms: c.int(3)?,
            revoked_at_ms: c.int(4)?,
        })
    }
}

impl AuditRecord {
    /// The select list of an audit entry, over `audit`.
    pub const COLUMNS: &'static str = "id, at_ms, actor, action, patient_id, detail";

    /// A row selected with [`AuditRecord::COLUMNS`] (and perhaps more).
    pub fn from_row(c: &impl Columns) -> StoreResult<AuditRecord> {
        Ok(AuditRecord {
            id: c.i64(0)?,
            entry: NewAudit {
                at_ms: c.i64(1)?,
                actor: c.string(2)?,
                action: stored_action(&c.string(3)?)?,
                patient_id: c.int(4)?.map(|p| PatientId(p as u64)),
                detail: c.string(5)?,
            },
        })
    }
}

impl Suggestion {
    /// The select list of a suggestion, over `suggestions`.
    pub const COLUMNS: &'static str =
        "id, created_at_ms, based_on_version, volume_ul, rate_ul_h, reason";

    /// A row selected with [`Suggestion::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<Suggestion> {
        Ok(Suggestion {
            id: c.i64(0)?,
            created_at_ms: c.i64(1)?,
            proposal: NewSuggestion::at(c, 2)?,
        })
    }
}

impl NewSuggestion {
    /// The select list of a proposal, over `suggestions`.
    pub const COLUMNS: &'static str = "based_on_version, volume_ul, rate_ul_h, reason";

    /// A proposal from its four columns from `i`.
    pub fn at(c: &impl Columns, i: usize) -> StoreResult<NewSuggestion> {
        Ok(NewSuggestion {
            based_on_version: c.u32(i)?,
            volume_ul: c.u32(i + 1)?,
            rate_ul_h: c.u32(i + 2)?,
            reason: c.string(i + 3)?,
        })
    }
}

impl crate::EventRow {
    /// The stored event a row selected with [`crate::EventRow::COLUMNS`]
    /// holds.
    pub fn from_row(c: &impl Columns) -> StoreResult<crate::StoredEvent> {
        crate::EventRow {
            id: c.i64(0)?,
            device_id: c.i64(1)?,
            seq: c.i64(2)?,
            uptime_ms: c.i64(3)?,
            received_at_ms: c.i64(4)?,
            kind: c.string(5)?,
            delivered_ul: c.int(6)?,
            rate_ul_h: c.int(7)?,
            index_version: c.int(8)?,
            state: c.text(9)?,
            alarm: c.text(10)?,
            heart_rate_bpm: c.int(11)?,
            spo2_pct: c.int(12)?,
            tremor_score: c.int(13)?,
        }
        .decode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of plain values, as a test stands in for a database.
    struct Row(Vec<Value>);

    #[derive(Clone)]
    enum Value {
        Int(i64),
        Text(&'static str),
        Null,
    }

    impl Columns for Row {
        fn int(&self, i: usize) -> StoreResult<Option<i64>> {
            match &self.0[i] {
                Value::Int(v) => Ok(Some(*v)),
                Value::Null => Ok(None),
                Value::Text(_) => Err(StoreError::Backend("text".into())),
            }
        }
        fn text(&self, i: usize) -> StoreResult<Option<String>> {
            match &self.0[i] {
                Value::Text(v) => Ok(Some((*v).to_owned())),
                Value::Null => Ok(None),
                Value::Int(_) => Err(StoreError::Backend("int".into())),
            }
        }
        fn bytes(&self, _: usize) -> StoreResult<Option<Vec<u8>>> {
            Ok(None)
        }
        fn flag(&self, i: usize) -> StoreResult<bool> {
            Ok(self.int(i)? == Some(1))
        }
    }

    #[test]
    fn a_summary_without_prescription_or_device_decodes_and_a_bad_one_is_a_fault() {
        use Value::*;
        let mut cells = vec![
            Int(4),
            Text("amy"),
            Text("Amy"),
            Text("Pond"),
            Text("dr.who"),
            Null,
            Null,
            Int(100),
            Int(9_000),
            Int(5_000),
            Int(200),
            Int(8_000),
            Int(4_000),
            Int(1),
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Text("MRN-0042"),
            Null,
            Text("Call the ward if it hurts"),
            Int(7),
            Null,
            Int(3),
            Text("4B"),
            Text("nina"),
        ];
        let s = PatientSummary::from_row(&Row(cells.clone())).unwrap();
        assert_eq!(
            s.ward.as_ref().map(|w| (w.id, w.name.as_str())),
            Some((WardId(3), "4B"))
        );
        assert_eq!(s.identifiers.record_number.as_deref(), Some("MRN-0042"));
        assert_eq!(s.note.as_ref().map(|n| n.set_at_ms), Some(7));
        assert_eq!(
            (s.patient_id, s.device, s.prescription),
            (PatientId(4), None, None)
        );
        assert_eq!(s.limits.hard.max_rate_ul_h, 9_000);
        assert_eq!((s.limits.soft.max_rate_ul_h, s.limits.set), (8_000, true));
        cells[14..22].clone_from_slice(&[
            Int(2),
            Int(1_000),
            Int(4_000),
            Text("run"),
            Int(5),
            Text("doc"),
            Null,
            Int(3),
        ]);
        let s = PatientSummary::from_row(&Row(cells.clone())).unwrap();
        assert_eq!(
            s.prescription.map(|p| (p.version, p.rate_ul_h, p.drug)),
            Some((2, 4_000, Some(DrugId(3))))
        );
        cells[17] = Text("sprint");
        assert!(matches!(
            PatientSummary::from_row(&Row(cells.clone())),
            Err(StoreError::Backend(_))
        ));
        cells[17] = Text("run");
        cells[8] = Int(-1);
        assert!(PatientSummary::from_row(&Row(cells)).is_err());
    }
}
