//! Webhooks for the hospital's paging or middleware: each notification is
//! a `POST` of JSON with `X-Infusion-Timestamp: <unix ms>` and
//! `X-Infusion-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>">`
//! under the shared secret. A 2xx answer delivers it; anything else is
//! retried. The body's `id` is the notification's, the same in every
//! delivery, so that a receiver drops repeats.

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use infusion_store::{Channel, Outgoing};
use sha2::Sha256;

use super::Sender;
use crate::clock::now_ms;

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One webhook URL.
pub struct Webhook {
    url: String,
    secret: Vec<u8>,
    client: reqwest::Client,
}

impl Webhook {
    /// A sender to `url` (http or https), signing with `secret`.
    pub fn new(url: &str, secret: Vec<u8>) -> Result<Webhook, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("--webhook-url {url}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("--webhook-url {url}: use an http or https URL"));
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Webhook {
            url: url.to_owned(),
            secret,
            client,
        })
    }
}

/// The `X-Infusion-Signature` of `body` sent at `timestamp_ms`:
/// `sha256=` and the hex HMAC-SHA256 over `"<timestamp>.<body>"`.
pub fn sign(secret: &[u8], timestamp_ms: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The JSON body of `o`: the same for every delivery of it.
pub fn body(o: &Outgoing) -> String {
    let notify: Vec<_> = o
        .recipients
        .iter()
        .map(|r| serde_json::json!({"username": r.username, "role": r.role.as_str()}))
        .collect();
    serde_json::json!({
        "id": o.id,
        "event": o.event.as_str(),
        "patient_id": o.patient.0,
        "patient": o.username,
        "alarm": o.alarm,
        "priority": o.priority.as_str(),
        "raised_at_ms": o.raised_at_ms,
        "at_ms": o.created_at_ms,
        "escalation_id": o.escalation,
        "step": o.step.as_str(),
        "notify": notify,
    })
    .to_string()
}

#[async_trait]
impl Sender for Webhook {
    fn channel(&self) -> Channel {
        Channel::Webhook(self.url.clone())
    }

    async fn deliver(&self, o: &Outgoing) -> Result<(), String> {
        let body = body(o);
        let ts = now_ms();
        let answer = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Infusion-Timestamp", ts.to_string())
            .header(
                "X-Infusion-Signature",
                sign(&self.secret, ts, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // Computed independently, with Python's
        // hmac.new(b"key", b"1700000000000.{}", hashlib.sha256).hexdigest().
        let s = sign(b"key", 1_700_000_000_000, b"{}");
        assert_eq!(
            s,
            "sha256=36a72f4525d3323bd0f238fe82098164fb77b1e42288ff8e07b074c686178ad3"
        );
    }
}
