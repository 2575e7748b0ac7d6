//! The SQL of devices: binding and the device login.

use async_trait::async_trait;
use infusion_protocol::{MacAddress, PatientId, PublicKey};
use infusion_store::{
    Binding, BoundNow, Columns, DeviceId, Devices, ENABLED, LoginRecord, NewToken, StoreResult,
    bind, next_seq, start_session,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteStore;
use crate::accounts::username_of;
use crate::rows::{one, patient_id, stored_patient};
use crate::tokens::insert_token;
use crate::writer::{Cached, WriteCtx, backend};

fn bind_device(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    mac: MacAddress,
    public_key: PublicKey,
    actor: &str,
    now_ms: i64,
) -> StoreResult<DeviceId> {
    let conn = cx.conn;
    let username = username_of(conn, patient)?;
    let pid = patient.0 as i64;
    let mac_text = mac.to_string();
    let holder = conn
        .row(
            "SELECT id, patient_id FROM devices WHERE mac = ?1 AND retired_at_ms IS NULL",
            [&mac_text],
            |r| Ok((DeviceId(r.get(0)?), patient_id(r.get(1)?))),
        )
        .optional()
        .map_err(backend)?;
    let (binding, effects) = bind(patient, &username, &mac, holder, actor, now_ms)?;
    let id = match binding {
        Binding::Rekey(id) => {
            conn.exec(
                "UPDATE devices SET public_key = ?1, token_generation = token_generation + 1
                 WHERE id = ?2",
                params![&public_key.0[..], id.0],
            )
            .map_err(backend)?;
            id
        }
        Binding::New => {
            conn.exec(
                "UPDATE devices SET retired_at_ms = ?1 WHERE patient_id = ?2 AND retired_at_ms IS NULL",
                params![now_ms, pid],
            )
            .map_err(backend)?;
            conn.exec(
                "INSERT INTO devices (patient_id, mac, registered_at_ms, public_key) VALUES (?1, ?2, ?3, ?4)",
                params![pid, mac_text, now_ms, &public_key.0[..]],
            )
            .map_err(backend)?;
            DeviceId(conn.last_insert_rowid())
        }
    };
    cx.apply(effects)?;
    Ok(id)
}

fn login_record(conn: &Connection, username: &str) -> StoreResult<Option<LoginRecord>> {
    let sql = format!(
        "SELECT {} FROM accounts a
         JOIN patients p ON p.account_id = a.id
         LEFT JOIN institutions i ON i.id = a.institution_id
         LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
         WHERE a.username = ?1 AND a.role = 'patient' AND {}",
        LoginRecord::COLUMNS,
        ENABLED
    );
    one(conn, &sql, [username], |r| LoginRecord::from_row(r))
}

fn start_device_session(
    cx: &mut WriteCtx<'_>,
    record: &LoginRecord,
    device: DeviceId,
    nonce: Option<[u8; 16]>,
    token: NewToken,
    now_ms: i64,
) -> StoreResult<u32> {
    let conn = cx.conn;
    let pid = stored_patient(record.patient_id).unwrap_or(-1);
    let bound = one(
        conn,
        "SELECT mac, login_nonce FROM devices WHERE id = ?1 AND patient_id = ?2 AND retired_at_ms IS NULL",
        params![device.0, pid],
        |r| {
            Ok(BoundNow {
                mac: r.string(0)?,
                login_nonce: r.array(1, "login nonce")?,
            })
        },
    )?;
    let (nonce, effects) = start_session(bound, nonce, record.patient_id, now_ms)?;
    if let Some(nonce) = nonce {
        conn.exec(
            "UPDATE devices SET login_nonce = ?1 WHERE id = ?2",
            params![&nonce[..], device.0],
        )
        .map_err(backend)?;
    }
    // One live chain per device: the new chain's generation ends the others.
    conn.exec(
        "UPDATE devices SET last_seen_ms = ?1, token_generation = token_generation + 1
         WHERE id = ?2",
        params![now_ms, device.0],
    )
    .map_err(backend)?;
    insert_token(conn, &token, device.0, pid, now_ms)?;
    let highest = one(
        conn,
        "SELECT MAX(seq) FROM events WHERE device_id = ?1",
        [device.0],
        |r| r.int(0),
    )?
    .flatten();
    cx.apply(effects)?;
    Ok(next_seq(highest))
}

#[async_trait]
impl Devices for SqliteStore {
    async fn bind_device(
        &self,
        patient: PatientId,
        mac: MacAddress,
        public_key: PublicKey,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<DeviceId> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| bind_device(cx, patient, mac, public_key, &actor, now_ms))
            .await
    }

    async fn device_login_record(&self, username: &str) -> StoreResult<Option<LoginRecord>> {
        let user = username.to_owned();
        self.readers
            .read(move |conn| login_record(conn, &user))
            .await
    }

    async fn start_device_session(
        &self,
        record: &LoginRecord,
        device: DeviceId,
        nonce: Option<[u8; 16]>,
        token: NewToken,
        now_ms: i64,
    ) -> StoreResult<u32> {
        let record = record.clone();
        self.writer
            .write(move |cx| start_device_session(cx, &record, device, nonce, token, now_ms))
            .await
    }
}
