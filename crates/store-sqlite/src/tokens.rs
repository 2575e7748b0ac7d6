//! The SQL of the token chain: consuming a presented token, issuing the
//! next, revoking a replayed chain, and the index transaction.

use std::sync::LazyLock;

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Columns, DeviceId, NewToken, PolledIndex, PresentedToken, StoreError, StoreResult, TokenHash,
    TokenStatus, Tokens, check_presented, index_of, stored_mac,
};
use rusqlite::{Connection, params};

use crate::SqliteStore;
use crate::rows::one;
use crate::treatment::{current_prescription, limits_of};
use crate::writer::{Cached, WriteCtx, backend};

/// Revokes `device`'s token chain, the one a replayed token belonged to:
/// marks its live tokens revoked and raises the device's token generation,
/// so that no token issued before now works again.
pub(crate) fn revoke_chain(conn: &Connection, device: DeviceId, now_ms: i64) -> StoreResult<()> {
    conn.exec(
        "UPDATE tokens SET revoked_at_ms = ?1
         WHERE device_id = ?2 AND used_at_ms IS NULL AND revoked_at_ms IS NULL",
        params![now_ms, device.0],
    )
    .and_then(|_| {
        conn.exec(
            "UPDATE devices SET token_generation = token_generation + 1 WHERE id = ?1",
            [device.0],
        )
    })
    .map(|_| ())
    .map_err(backend)
}

/// Stores `t` as a token of `device` for patient `pid`, of the device's
/// current token generation.
pub(crate) fn insert_token(
    conn: &Connection,
    t: &NewToken,
    device: i64,
    pid: i64,
    now_ms: i64,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO tokens (hash, device_id, patient_id, issued_at_ms, expires_at_ms, generation)
         SELECT ?1, ?2, ?3, ?4, ?5, token_generation FROM devices WHERE id = ?2",
    )
    .and_then(|mut st| st.execute(params![&t.hash.0[..], device, pid, now_ms, t.expires_at_ms]))
    .map(|_| ())
    .map_err(backend)
}

/// Consumes the presented token for `patient`, or says why not. On refusal
/// the audit entry is kept and nothing else changes.
pub(crate) fn consume_token(
    cx: &mut WriteCtx<'_>,
    presented: TokenHash,
    patient: PatientId,
    now_ms: i64,
) -> StoreResult<(i64, i64, String)> {
    let conn = cx.conn;
    // On every device request: the text is built once, not per request.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM tokens t JOIN devices d ON d.id = t.device_id WHERE t.hash = ?1",
            PresentedToken::COLUMNS
        )
    });
    let row = one(conn, &SQL, [&presented.0[..]], |r| {
        Ok((r.i64(0)?, PresentedToken::from_row(r)?))
    })?;
    if let Err(refusal) = check_presented(row.as_ref().map(|(_, t)| t), patient, now_ms) {
        cx.keep_refusal(&refusal, presented);
        return Err(refusal.error);
    }
    let Some((device, token)) = row else {
        return Err(StoreError::TokenInvalid);
    };
    let changed = conn
        .prepare_cached("UPDATE tokens SET used_at_ms = ?1 WHERE hash = ?2 AND used_at_ms IS NULL")
        .and_then(|mut st| st.execute(params![now_ms, &presented.0[..]]))
        .map_err(backend)?;
    if changed != 1 {
        // Cannot happen on the single writer; kept so that the guarantee
        // does not rest on that.
        return Err(StoreError::TokenUsed);
    }
    conn.prepare_cached("UPDATE devices SET last_seen_ms = ?1 WHERE id = ?2")
        .and_then(|mut st| st.execute(params![now_ms, device]))
        .map_err(backend)?;
    Ok((device, token.owner.0 as i64, token.mac))
}

fn poll_index(
    cx: &mut WriteCtx<'_>,
    presented: TokenHash,
    patient: PatientId,
    next: NewToken,
    now_ms: i64,
) -> StoreResult<PolledIndex> {
    let (device, pid, mac) = consume_token(cx, presented, patient, now_ms)?;
    let mac = stored_mac(&mac)?;
    let conn = cx.conn;
    let limits = limits_of(conn, pid)?.hard;
    let (index, first_fetch) = index_of(current_prescription(conn, pid)?.as_ref(), limits);
    if let Some(version) = first_fetch {
        conn.exec(
            "UPDATE prescriptions SET fetched_at_ms = ?1 WHERE patient_id = ?2 AND version = ?3",
            params![now_ms, pid, version],
        )
        .map_err(backend)?;
    }
    insert_token(conn, &next, device, pid, now_ms)?;
    Ok(PolledIndex { index, mac })
}

fn prune_tokens(cx: &mut WriteCtx<'_>, before_ms: i64) -> StoreResult<u64> {
    let tokens = cx
        .conn
        .exec("DELETE FROM tokens WHERE expires_at_ms < ?1", [before_ms])
        .map_err(backend)?;
    let sessions = cx
        .conn
        .exec(
            "DELETE FROM web_sessions WHERE expires_at_ms < ?1 OR ended_at_ms < ?1",
            [before_ms],
        )
        .map_err(backend)?;
    Ok((tokens + sessions) as u64)
}

fn token_status(conn: &Connection, hash: TokenHash) -> StoreResult<Option<TokenStatus>> {
    let sql = format!(
        "SELECT {} FROM tokens WHERE hash = ?1",
        TokenStatus::COLUMNS
    );
    one(conn, &sql, [&hash.0[..]], |r| TokenStatus::from_row(r))
}

#[async_trait]
impl Tokens for SqliteStore {
    async fn poll_index(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<PolledIndex> {
        self.writer
            .write(move |cx| poll_index(cx, presented, patient_id, next, now_ms))
            .await
    }

    async fn prune_tokens(&self, before_ms: i64) -> StoreResult<u64> {
        self.writer
            .write(move |cx| prune_tokens(cx, before_ms))
            .await
    }

    async fn token_status(&self, hash: TokenHash) -> StoreResult<Option<TokenStatus>> {
        self.readers
            .read(move |conn| token_status(conn, hash))
            .await
    }
}
