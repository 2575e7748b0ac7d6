//! The device API over HTTP, with the device's own means: reqwless over
//! the board's sockets, JSON in fixed buffers (serde-json-core), every
//! request bounded by [`REQUEST_TIMEOUT`]. Requests go over a connection
//! the network loop keeps open while the pump polls (over HTTPS, one
//! handshake for many requests: each costs the device far more than a
//! request), and opens again after an error, a `Connection: close`, or a
//! pause longer than the server keeps an idle connection.

use embassy_time::{Duration, with_timeout};
use embedded_io_async::{Read, Write};
use infusion_protocol::{
    ChallengeResponse, DeviceSecret, ErrorCode, IndexRequest, IndexResponse, LoginRequest,
    LoginResponse, Token,
};
use infusion_pump_core::Failure;
use reqwless::client::HttpResource;
use reqwless::headers::ContentType;
use reqwless::request::RequestBuilder;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The longest a request may take, first byte to last: past it the pump
/// counts a network failure and backs off.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of the largest request body: a report of the most events one
/// report may carry.
pub const TX_MAX: usize = 16 * 1024;
/// Bytes of the largest answer, head and body.
pub const RX_MAX: usize = 4 * 1024;

/// Bytes of the TLS read buffer: one whole record (16 KiB of plaintext
/// and its overhead), since the server does not shorten its records.
pub const TLS_RX: usize = 16_640;
/// Bytes of the TLS write buffer (a report is sent in several records).
pub const TLS_TX: usize = 4_096;

/// Whether a connection may carry the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The answer was read whole and the server keeps the connection.
    Kept,
    /// A transport error, a timeout or `Connection: close`: open a new one.
    Lost,
}

/// The device API's requests, with buffers for one request's body (`tx`)
/// and one answer (`rx`).
pub struct Api<'a> {
    tx: &'a mut [u8],
    rx: &'a mut [u8],
}

/// The error code of a refusal; the rest of the body (the message) is for
/// people and is skipped.
#[derive(serde::Deserialize)]
struct Refusal {
    error: ErrorCode,
}

impl<'a> Api<'a> {
    /// The API with its buffers.
    pub fn new(tx: &'a mut [u8], rx: &'a mut [u8]) -> Self {
        Api { tx, rx }
    }

    /// `POST /challenge`, then `POST /login` with the nonce signed by the
    /// device secret, over `conn`.
    pub async fn login<C: Read + Write>(
        &mut self,
        conn: &mut HttpResource<'_, C>,
        mut req: LoginRequest,
        secret: &DeviceSecret,
    ) -> (Result<LoginResponse, Failure>, Link) {
        // No body: the server does not read one, and a body it leaves
        // unread ends the connection after its answer.
        let (challenge, link) = self
            .send_prepared::<_, ChallengeResponse>(conn, None, "/api/v1/device/challenge", 0)
            .await;
        let challenge = match (challenge, link) {
            (Ok(c), Link::Kept) => c,
            (Ok(_), Link::Lost) => return (Err(Failure::Network), Link::Lost),
            (Err(f), link) => return (Err(f), link),
        };
        req.answer(challenge.nonce, secret);
        self.post(conn, "/api/v1/device/login", None, &req).await
    }

    /// `POST /index`, over `conn`.
    pub async fn index<C: Read + Write>(
        &mut self,
        conn: &mut HttpResource<'_, C>,
        token: &Token,
        req: &IndexRequest,
    ) -> (Result<IndexResponse, Failure>, Link) {
        self.post(conn, "/api/v1/device/index", Some(token), req)
            .await
    }

    /// Serialises a request body into the send buffer and returns its
    /// length. A report is serialised while the core is borrowed, then
    /// sent with [`Self::send_prepared`] once it is let go.
    pub fn prepare<B: Serialize>(&mut self, body: &B) -> Result<usize, Failure> {
        serde_json_core::to_slice(body, self.tx).map_err(|_| Failure::Network)
    }

    async fn post<C: Read + Write, B: Serialize, R: DeserializeOwned>(
        &mut self,
        conn: &mut HttpResource<'_, C>,
        path: &str,
        token: Option<&Token>,
        body: &B,
    ) -> (Result<R, Failure>, Link) {
        match self.prepare(body) {
            Ok(len) => self.send_prepared(conn, token, path, len).await,
            Err(f) => (Err(f), Link::Kept),
        }
    }

    /// Sends the first `len` bytes of the send buffer to `path` over
    /// `conn` within [`REQUEST_TIMEOUT`] and reads the answer as `R`, or
    /// as a refusal; says whether `conn` may carry the next request.
    pub async fn send_prepared<C: Read + Write, R: DeserializeOwned>(
        &mut self,
        conn: &mut HttpResource<'_, C>,
        token: Option<&Token>,
        path: &str,
        len: usize,
    ) -> (Result<R, Failure>, Link) {
        let mut bearer: heapless::String<80> = heapless::String::new();
        if let Some(t) = token
            && (bearer.push_str("Bearer ").is_err() || bearer.push_str(t.as_str()).is_err())
        {
            return (Err(Failure::Network), Link::Kept);
        }
        let (tx, rx) = (&self.tx[..len], &mut *self.rx);
        let exchange = async {
            let auth = [("Authorization", bearer.as_str())];
            let headers: &[(&str, &str)] = if token.is_some() { &auth } else { &[] };
            let response = conn
                .post(path)
                .headers(headers)
                .content_type(ContentType::ApplicationJson)
                .body(tx)
                .send(rx)
                .await
                .map_err(|_| ())?;
            let close = response.headers().any(|(name, value)| {
                name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case(b"close")
            });
            let ok = response.status.is_successful();
            let body = response.body().read_to_end().await.map_err(|_| ())?;
            let answer = if ok {
                serde_json_core::from_slice::<R>(body)
                    .map(|(r, _)| r)
                    .map_err(|_| Failure::Network)
            } else {
                match serde_json_core::from_slice::<Refusal>(body) {
                    Ok((r, _)) => Err(Failure::Api(r.error)),
                    Err(_) => Err(Failure::Network),
                }
            };
            Ok::<_, ()>((answer, if close { Link::Lost } else { Link::Kept }))
        };
        match with_timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(done)) => done,
            Ok(Err(())) | Err(_) => (Err(Failure::Network), Link::Lost),
        }
    }
}

#[cfg(test)]
mod tests {
    use infusion_protocol::{ErrorCode, IndexResponse, LoginResponse};

    use super::Refusal;

    #[test]
    fn a_refusal_is_read_by_its_code_whatever_its_message() {
        let body =
            br#"{"error":"token_used","message":"this token was already used: log in \"again\""}"#;
        let (r, _) = serde_json_core::from_slice::<Refusal>(body).unwrap();
        assert_eq!(r.error, ErrorCode::TokenUsed);
    }

    #[test]
    fn the_servers_answers_are_read_as_it_writes_them() {
        let login = concat!(
            r#"{"first_name":"Zoë","last_name":"O\"Brien\\","institution":"St Test","#,
            r#""patient_id":7,"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","#,
            r#""expires_in_s":300,"next_seq":12}"#
        );
        let (l, _) = serde_json_core::from_slice::<LoginResponse>(login.as_bytes()).unwrap();
        assert_eq!((l.patient_id.0, l.next_seq), (7, Some(12)));
        let index = concat!(
            r#"{"index":{"version":3,"volume_ul":1500,"rate_ul_h":90000,"state":"run","#,
            r#""limits":{"min_rate_ul_h":1000,"max_rate_ul_h":200000,"max_volume_ul":10000}},"#,
            r#""signature":""#,
            "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            r#"","token":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","expires_in_s":300}"#
        );
        let (i, _) = serde_json_core::from_slice::<IndexResponse>(index.as_bytes()).unwrap();
        assert_eq!((i.index.version, i.index.rate_ul_h), (3, 90_000));
    }
}
