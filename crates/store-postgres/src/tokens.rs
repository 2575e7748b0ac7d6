//! The SQL of the token chain: consuming a presented token and issuing the
//! next in one statement, what a refusal leaves behind, and the index
//! transaction.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Columns, NewToken, PolledIndex, Prescription, PresentedToken, Refusal, StoreError, StoreResult,
    TokenHash, TokenStatus, Tokens, index_of, limits_at, refusal_after_miss, stored_mac,
};
use sqlx::PgPool;

use crate::audit::insert_audit_on;
use crate::rows::{Cols, stored_patient};
use crate::{PgStore, db_error};

/// Consumes the presented token (if it is unused, unexpired, this
/// patient's, and its device registration current), stamps the device as
/// seen and issues the next token, all in one statement. Returns the device
/// id and MAC, or no row when the token may not be used.
///
/// Atomic across instances: a concurrent `UPDATE` of the same token row
/// waits for the first to commit and then re-evaluates `used_at_ms IS NULL`
/// on the new row version, finds it false and updates nothing.
pub(crate) const CONSUME: &str = "
    consumed AS (
        UPDATE tokens t SET used_at_ms = $3
        FROM devices d
        WHERE t.hash = $1 AND t.patient_id = $2 AND t.used_at_ms IS NULL AND t.expires_at_ms > $3
          AND t.revoked_at_ms IS NULL AND t.generation = d.token_generation
          AND d.id = t.device_id AND d.retired_at_ms IS NULL
        RETURNING t.device_id, t.patient_id, d.mac, t.generation
    ), seen AS (
        UPDATE devices SET last_seen_ms = $3 FROM consumed WHERE devices.id = consumed.device_id
    ), issued AS (
        INSERT INTO tokens (hash, device_id, patient_id, issued_at_ms, expires_at_ms, generation)
        SELECT $4, device_id, patient_id, $3, $5, generation FROM consumed
    )";

/// After a refused consumption: finds out why, keeps what the refusal
/// leaves behind (its audit entry and, for a replay, the revocation of the
/// device's chain) in a transaction of its own, the refused one having
/// changed nothing, and returns the error to answer with.
pub(crate) async fn refuse_token(
    pool: &PgPool,
    presented: TokenHash,
    patient: PatientId,
    now_ms: i64,
) -> StoreError {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM tokens t JOIN devices d ON d.id = t.device_id WHERE t.hash = $1",
        PresentedToken::COLUMNS
    )))
    .bind(&presented.0[..])
    .fetch_optional(pool)
    .await
    .map_err(db_error)
    .and_then(|row| row.map(|r| PresentedToken::from_row(&Cols(&r))).transpose());
    let found = match found {
        Ok(f) => f,
        Err(e) => return e,
    };
    let refusal = refusal_after_miss(found.as_ref(), patient, now_ms);
    match keep_refusal(pool, &refusal, presented).await {
        Ok(()) => refusal.error,
        Err(failed) => failed,
    }
}

/// Writes a refusal's audit entry and revokes a replayed chain, in one
/// transaction.
///
/// The revocation marks the live tokens first and raises the device's
/// token generation second: a consumption locks its token row, then the
/// device row, so taking them in the same order cannot deadlock. A
/// consumption that raced the revocation may still have issued a token,
/// but with the old generation, so that token is dead.
async fn keep_refusal(pool: &PgPool, refusal: &Refusal, presented: TokenHash) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    if refusal.count_on_token {
        sqlx::query("UPDATE tokens SET refused_count = refused_count + 1 WHERE hash = $1")
            .bind(&presented.0[..])
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    if let Some(device) = refusal.revoke_chain_of {
        sqlx::query(
            "UPDATE tokens SET revoked_at_ms = $1
             WHERE device_id = $2 AND used_at_ms IS NULL AND revoked_at_ms IS NULL",
        )
        .bind(refusal.at_ms)
        .bind(device.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query("UPDATE devices SET token_generation = token_generation + 1 WHERE id = $1")
            .bind(device.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    if let Some(entry) = &refusal.audit {
        insert_audit_on(&mut tx, entry).await?;
    }
    tx.commit().await.map_err(db_error)
}

async fn poll_index(
    pool: &PgPool,
    presented: TokenHash,
    patient: PatientId,
    next: NewToken,
    now_ms: i64,
) -> StoreResult<PolledIndex> {
    let Some(pid) = stored_patient(patient) else {
        return Err(refuse_token(pool, presented, patient, now_ms).await);
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH {CONSUME}, cur AS (
             SELECT c.patient_id, c.mac, p.version, p.volume_ul, p.rate_ul_h, p.state,
                    p.created_at_ms, p.created_by, p.fetched_at_ms, p.drug_id
             FROM consumed c
             LEFT JOIN LATERAL (
                 SELECT {rx}
                 FROM prescriptions
                 WHERE patient_id = c.patient_id ORDER BY version DESC LIMIT 1
             ) p ON TRUE
         ), fetched AS (
             UPDATE prescriptions f SET fetched_at_ms = $3 FROM cur
             WHERE cur.fetched_at_ms IS NULL AND f.patient_id = cur.patient_id AND f.version = cur.version
         )
         SELECT l.min_rate_ul_h, l.max_rate_ul_h, l.max_volume_ul,
                cur.version, cur.volume_ul, cur.rate_ul_h, cur.state, cur.created_at_ms,
                cur.created_by, cur.fetched_at_ms, cur.drug_id, cur.mac
         FROM cur JOIN limits l ON l.patient_id = cur.patient_id",
        rx = Prescription::COLUMNS
    )))
    .bind(&presented.0[..])
    .bind(pid)
    .bind(now_ms)
    .bind(&next.hash.0[..])
    .bind(next.expires_at_ms)
    .persistent(true)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    let Some(r) = row else {
        return Err(refuse_token(pool, presented, patient, now_ms).await);
    };
    let r = Cols(&r);
    let limits = limits_at(&r, 0)?;
    let mac = stored_mac(&r.string(11)?)?;
    // The first fetch was marked in the statement; only the index is left.
    let current = Prescription::at(&r, 3)?;
    let (index, _) = index_of(current.as_ref(), limits);
    Ok(PolledIndex { index, mac })
}

#[async_trait]
impl Tokens for PgStore {
    async fn poll_index(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<PolledIndex> {
        poll_index(&self.pool, presented, patient_id, next, now_ms).await
    }

    async fn prune_tokens(&self, before_ms: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let mut removed = 0;
        for sql in [
            "DELETE FROM tokens WHERE expires_at_ms < $1",
            "DELETE FROM web_sessions WHERE expires_at_ms < $1 OR ended_at_ms < $1",
        ] {
            removed += sqlx::query(sql)
                .bind(before_ms)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected();
        }
        tx.commit().await.map_err(db_error)?;
        Ok(removed)
    }

    async fn token_status(&self, hash: TokenHash) -> StoreResult<Option<TokenStatus>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM tokens WHERE hash = $1",
            TokenStatus::COLUMNS
        )))
        .bind(&hash.0[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| TokenStatus::from_row(&Cols(&r)))
        .transpose()
    }
}
