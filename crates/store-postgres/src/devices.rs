//! The SQL of devices: binding and the device login.

use async_trait::async_trait;
use infusion_protocol::{MacAddress, PatientId, PublicKey};
use infusion_store::{
    Binding, BoundNow, Columns, DeviceId, Devices, ENABLED, LoginRecord, NewToken, StoreError,
    StoreResult, bind, next_seq, start_session,
};

use crate::accounts::lock_patient;
use crate::audit::apply;
use crate::rows::{Cols, get, patient_id, stored_patient};
use crate::{PgStore, db_error};

#[async_trait]
impl Devices for PgStore {
    async fn bind_device(
        &self,
        patient: PatientId,
        mac: MacAddress,
        public_key: PublicKey,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<DeviceId> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let username = lock_patient(&mut tx, patient).await?;
        let pid = patient.0 as i64;
        let mac_text = mac.to_string();
        let holder = sqlx::query(
            "SELECT id, patient_id FROM devices WHERE mac = $1 AND retired_at_ms IS NULL",
        )
        .bind(&mac_text)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .map(|r| Ok::<_, StoreError>((DeviceId(get(&r, 0)?), patient_id(get(&r, 1)?))))
        .transpose()?;
        let (binding, effects) = bind(patient, &username, &mac, holder, actor, now_ms)?;
        let id = match binding {
            Binding::Rekey(id) => {
                sqlx::query(
                    "UPDATE devices SET public_key = $1, token_generation = token_generation + 1
                     WHERE id = $2",
                )
                .bind(&public_key.0[..])
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                id
            }
            Binding::New => {
                sqlx::query(
                    "UPDATE devices SET retired_at_ms = $1 WHERE patient_id = $2 AND retired_at_ms IS NULL",
                )
                .bind(now_ms)
                .bind(pid)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO devices (patient_id, mac, registered_at_ms, public_key) VALUES ($1, $2, $3, $4)
                     RETURNING id",
                )
                .bind(pid)
                .bind(&mac_text)
                .bind(now_ms)
                .bind(&public_key.0[..])
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| match db_error(e) {
                    // Another instance bound this MAC in the meantime.
                    StoreError::Conflict(_) => StoreError::device_taken(&mac),
                    other => other,
                })?;
                DeviceId(id)
            }
        };
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(id)
    }

    async fn device_login_record(&self, username: &str) -> StoreResult<Option<LoginRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM accounts a
             JOIN patients p ON p.account_id = a.id
             LEFT JOIN institutions i ON i.id = a.institution_id
             LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
             WHERE a.username = $1 AND a.role = 'patient' AND {}",
            LoginRecord::COLUMNS,
            ENABLED
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| LoginRecord::from_row(&Cols(&r)))
        .transpose()
    }

    async fn start_device_session(
        &self,
        record: &LoginRecord,
        device: DeviceId,
        nonce: Option<[u8; 16]>,
        token: NewToken,
        now_ms: i64,
    ) -> StoreResult<u32> {
        let pid = stored_patient(record.patient_id).unwrap_or(-1);
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Touching the device row checks and locks the binding in one go: a
        // concurrent login of the same device waits here, then reads the
        // nonce the first one stored. One live chain per device: the new
        // chain's generation ends the others.
        let bound = sqlx::query(
            "UPDATE devices SET last_seen_ms = $1, token_generation = token_generation + 1
             WHERE id = $2 AND patient_id = $3 AND retired_at_ms IS NULL
             RETURNING mac, login_nonce",
        )
        .bind(now_ms)
        .bind(device.0)
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .map(|r| {
            let r = Cols(&r);
            Ok::<_, StoreError>(BoundNow {
                mac: r.string(0)?,
                login_nonce: r.array(1, "login nonce")?,
            })
        })
        .transpose()?;
        let (nonce, effects) = start_session(bound, nonce, record.patient_id, now_ms)?;
        if let Some(nonce) = nonce {
            sqlx::query("UPDATE devices SET login_nonce = $1 WHERE id = $2")
                .bind(&nonce[..])
                .bind(device.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        sqlx::query(
            "INSERT INTO tokens (hash, device_id, patient_id, issued_at_ms, expires_at_ms, generation)
             SELECT $1, $2, $3, $4, $5, token_generation FROM devices WHERE id = $2",
        )
        .bind(&token.hash.0[..])
        .bind(device.0)
        .bind(pid)
        .bind(now_ms)
        .bind(token.expires_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let highest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE device_id = $1")
                .bind(device.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(next_seq(highest))
    }
}
