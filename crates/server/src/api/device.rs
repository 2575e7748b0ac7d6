//! The device API: login, index, report (paper, section 3.2.2 a).
//!
//! Every request after login presents the token from the previous answer
//! and receives the next one; a token works once. Each handler is one store
//! transaction, so a refused request changes nothing.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use infusion_protocol::{
    ChallengeResponse, ErrorBody, ErrorCode, IndexRequest, IndexResponse, LoginRequest,
    LoginResponse, ReportRequest, ReportResponse, Token, truncated,
};
use infusion_store::throttle::{Outcome, ThrottleKey};
use infusion_store::{NewToken, StoreError, is_possible_username};

use crate::AppState;
use crate::client::Client;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::extract::{self, Bearer};
use crate::refusals::Unrecorded;
use crate::{device_login, throttle, token};

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/device/challenge", post(challenge))
        .route("/api/v1/device/login", post(login))
        .route("/api/v1/device/index", post(index))
        .route("/api/v1/device/report", post(report))
}

impl AppState {
    /// Draws the next token and its stored form, with the lifetime in force.
    fn next_token(&self, now_ms: i64) -> Result<(Token, NewToken), ApiError> {
        let (token, hash) = token::issue()?;
        let ttl_ms = i64::try_from(self.config.token_ttl.as_millis()).unwrap_or(i64::MAX);
        Ok((
            token,
            NewToken {
                hash,
                expires_at_ms: now_ms.saturating_add(ttl_ms),
            },
        ))
    }

    fn expires_in_s(&self) -> u32 {
        u32::try_from(self.config.token_ttl.as_secs()).unwrap_or(u32::MAX)
    }
}

/// A nonce for the next login to sign with the device secret. Asks for no
/// credentials, so that it tells nothing about any account.
#[utoipa::path(post, path = "/api/v1/device/challenge", tag = "device",
    responses(
        (status = 200, description = "A fresh nonce, valid for `expires_in_s` and for one login", body = ChallengeResponse),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ))]
pub async fn challenge(State(app): State<AppState>) -> Result<Json<ChallengeResponse>, ApiError> {
    Ok(Json(ChallengeResponse {
        nonce: app.keys.challenge(now_ms())?,
        expires_in_s: u32::try_from(app.config.challenge_ttl.as_secs()).unwrap_or(u32::MAX),
    }))
}

/// Log in with the patient account, the pump's MAC address and the proof
/// of its device secret over a challenge nonce.
#[utoipa::path(post, path = "/api/v1/device/login", tag = "device",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in: the first token of the chain", body = LoginResponse),
        (status = 401, description = "`invalid_credentials`: unknown user, wrong password, or no valid proof of the device secret (one answer for all three); `device_proof_required`: no `nonce` and `proof`; `challenge_invalid`: the nonce is not this server's, has expired, or was used", body = ErrorBody),
        (status = 403, description = "`device_not_registered`: this MAC is not the device bound to the account", body = ErrorBody),
        (status = 429, description = "`too_many_requests`: too many attempts for this username or device, too many at once from this address, or the server is busy checking other logins; wait `Retry-After` seconds", body = ErrorBody),
        (status = 400, description = "`malformed_json`", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body came too slowly; the connection is closed", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`: missing or unknown field, wrong type, value out of range", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ))]
pub async fn login(
    State(app): State<AppState>,
    client: Client,
    extract::Json(req): extract::Json<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let now = now_ms();
    let ttl_ms = i64::try_from(app.config.challenge_ttl.as_millis()).unwrap_or(i64::MAX);
    let checked = req.nonce.as_ref().map(|n| app.keys.check(n, ttl_ms, now));
    let stamp = device_login::challenge(checked, req.proof.is_some(), app.config.paper_login)
        .map_err(|r| ApiError::from(r.answer))?;
    if !is_possible_username(&req.username) {
        // No account has such a name: nothing about it is stored or hashed.
        app.refusals.count(Unrecorded::InvalidUsername);
        return Err(device_login::Answer::InvalidCredentials.into());
    }
    let record = app.store.device_login_record(&req.username).await?;
    let screened = match device_login::screen(&req, stamp, record.as_ref(), client.ip, now) {
        Ok(s) => s,
        Err(refused) => return Err(apply(&app, refused, &[]).await),
    };
    throttle::admit(&app, &screened.keys, now).await?;
    // A paced attempt may have waited its turn.
    let now = now_ms();
    let hash = record.as_ref().map(|r| r.password_hash.as_str());
    let matched =
        throttle::verify(&app, &screened.keys, &req.password, hash, screened.lane).await?;
    let device = match device_login::judge(&req, record.as_ref(), &screened, matched, now) {
        Ok(d) => d,
        Err(refused) => {
            if record.is_none() {
                app.refusals.count(Unrecorded::UnknownUsername);
            }
            return Err(apply(&app, refused, &screened.keys).await);
        }
    };
    let Some(record) = record else {
        return Err(ApiError::internal("login record vanished"));
    };
    let (token, next) = app.next_token(now)?;
    let started = app
        .store
        .start_device_session(&record, device, stamp, next, now)
        .await;
    let next_seq = match started {
        Ok(next_seq) => next_seq,
        Err(e) => {
            let refused = device_login::session_refused(e, &req, record.patient_id, now)?;
            return Err(apply(&app, refused, &screened.keys).await);
        }
    };
    throttle::settle(&app, &screened.keys, Outcome::Succeeded).await?;
    Ok(Json(LoginResponse {
        first_name: truncated(&record.first_name),
        last_name: truncated(&record.last_name),
        institution: truncated(&record.institution),
        patient_id: record.patient_id,
        token,
        expires_in_s: app.expires_in_s(),
        next_seq: Some(next_seq),
    }))
}

/// Applies a refused login: its audit entry, its outcome on `keys` (a
/// failure when it counts as a guess, else given back), and the answer
/// (or the store's fault, if applying failed).
async fn apply(app: &AppState, refused: device_login::Refused, keys: &[ThrottleKey]) -> ApiError {
    let applied = async {
        if let Some(entry) = refused.audit {
            app.store.append_audit(entry).await?;
        }
        let outcome = if refused.counts {
            Outcome::Failed
        } else {
            Outcome::Unjudged
        };
        app.store.login_settled(keys.to_vec(), outcome).await?;
        Ok::<_, StoreError>(())
    };
    match applied.await {
        Ok(()) => refused.answer.into(),
        Err(e) => e.into(),
    }
}

/// Fetch the infusion index, presenting the previous answer's token.
#[utoipa::path(post, path = "/api/v1/device/index", tag = "device",
    request_body = IndexRequest,
    security(("token" = [])),
    responses(
        (status = 200, description = "The current index and the next token", body = IndexResponse),
        (status = 401, description = "`token_used`, `token_expired` or `token_invalid`: log in again", body = ErrorBody),
        (status = 403, description = "`forbidden`: the patient is not this account's", body = ErrorBody),
        (status = 400, description = "`malformed_json`", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body came too slowly; the connection is closed", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ))]
pub async fn index(
    State(app): State<AppState>,
    Bearer(presented): Bearer,
    extract::Json(req): extract::Json<IndexRequest>,
) -> Result<Json<IndexResponse>, ApiError> {
    let now = now_ms();
    let (token, next) = app.next_token(now)?;
    let polled = app
        .store
        .poll_index(token::hash(&presented), req.patient_id, next, now)
        .await
        .map_err(|e| app.token_refused(e))?;
    Ok(Json(IndexResponse {
        signature: app
            .keys
            .index
            .sign(req.patient_id, polled.mac, &polled.index),
        index: polled.index,
        token,
        expires_in_s: app.expires_in_s(),
    }))
}

/// Report events; idempotent by (device, `seq`). A 200 means durable.
#[utoipa::path(post, path = "/api/v1/device/report", tag = "device",
    request_body = ReportRequest,
    security(("token" = [])),
    responses(
        (status = 200, description = "Stored: counts of new and already-stored events, and the next token", body = ReportResponse),
        (status = 401, description = "`token_used`, `token_expired`, `token_invalid` or `token_revoked`: log in again", body = ErrorBody),
        (status = 403, description = "`forbidden`: the patient is not this account's", body = ErrorBody),
        (status = 400, description = "`malformed_json`", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body came too slowly; the connection is closed", body = ErrorBody),
        (status = 409, description = "`seq_conflict`: an event reuses a `seq` stored with other content; nothing was stored and the token is not consumed: log in again and number new events from `next_seq`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`: includes `seq` not strictly increasing within the batch", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ))]
pub async fn report(
    State(app): State<AppState>,
    Bearer(presented): Bearer,
    extract::Json(req): extract::Json<ReportRequest>,
) -> Result<Json<ReportResponse>, ApiError> {
    if req.events.windows(2).any(|w| w[0].seq >= w[1].seq) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "events must be in strictly increasing seq order",
        ));
    }
    let now = now_ms();
    let (token, next) = app.next_token(now)?;
    let outcome = app
        .store
        .report(
            token::hash(&presented),
            req.patient_id,
            req.events.to_vec(),
            next,
            now,
        )
        .await
        .map_err(|e| app.token_refused(e))?;
    if outcome.accepted > 0
        && req
            .events
            .iter()
            .any(|e| matches!(e.body, infusion_protocol::EventBody::Vitals(_)))
    {
        // Off the pump's path: the answer does not wait for the algorithm.
        let (app, patient) = (app.clone(), req.patient_id);
        tokio::spawn(async move {
            if let Err(e) = crate::decision::evaluate(&app, patient).await {
                tracing::warn!(error = %e, patient = patient.0, "decision algorithm failed");
            }
        });
    }
    Ok(Json(ReportResponse {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        token,
        expires_in_s: app.expires_in_s(),
    }))
}
