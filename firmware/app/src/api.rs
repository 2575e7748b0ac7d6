//! The device API over HTTP, with the device's own means: reqwless over
//! the board's sockets, JSON in fixed buffers (serde-json-core), every
//! request bounded by [`REQUEST_TIMEOUT`]. One connection per request: a
//! pump asks every few seconds, and a connection left open is one more
//! thing to go stale on a Wi-Fi link.

use embassy_time::{Duration, with_timeout};
use embedded_nal_async::{Dns, TcpConnect};
use infusion_protocol::{
    ChallengeResponse, DeviceSecret, ErrorCode, IndexRequest, IndexResponse, LoginRequest,
    LoginResponse, Token,
};
use infusion_pump_core::Failure;
use reqwless::client::{HttpClient, TlsConfig, TlsVerify};
use reqwless::headers::ContentType;
use reqwless::request::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The longest a request may take, connection to last byte: past it the
/// pump counts a network failure and backs off.
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

/// What HTTPS needs: the authority the server's chain must lead to, the
/// record buffers, and fresh randomness for each handshake.
pub struct Tls<'a> {
    /// The certificate authority's certificate, DER.
    pub ca: &'a [u8],
    /// See [`TLS_RX`].
    pub rx: &'a mut [u8],
    /// See [`TLS_TX`].
    pub tx: &'a mut [u8],
    /// The board's random numbers (a hardware generator).
    pub random: fn() -> u64,
}

/// The device API at one server, over one board's sockets.
pub struct Api<'a, T, D> {
    tcp: &'a T,
    dns: &'a D,
    base: &'a str,
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    tls: Option<Tls<'a>>,
}

/// The error code of a refusal; the rest of the body (the message) is for
/// people and is skipped.
#[derive(serde::Deserialize)]
struct Refusal {
    error: ErrorCode,
}

impl<'a, T: TcpConnect, D: Dns> Api<'a, T, D> {
    /// The API at `base` (`http://host:port`, or `https://` with `tls`),
    /// with buffers for one request's body (`tx`) and one answer (`rx`).
    pub fn new(
        tcp: &'a T,
        dns: &'a D,
        base: &'a str,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        tls: Option<Tls<'a>>,
    ) -> Self {
        Api {
            tcp,
            dns,
            base: base.trim_end_matches('/'),
            tx,
            rx,
            tls,
        }
    }

    /// `POST /challenge`, then `POST /login` with the nonce signed by the
    /// device secret.
    pub async fn login(
        &mut self,
        mut req: LoginRequest,
        secret: &DeviceSecret,
    ) -> Result<LoginResponse, Failure> {
        let challenge: ChallengeResponse = self.post("/api/v1/device/challenge", None, &()).await?;
        req.proof = Some(secret.prove(&challenge.nonce, &req.username, req.mac));
        req.nonce = Some(challenge.nonce);
        self.post("/api/v1/device/login", None, &req).await
    }

    /// `POST /index`.
    pub async fn index(
        &mut self,
        token: &Token,
        req: &IndexRequest,
    ) -> Result<IndexResponse, Failure> {
        self.post("/api/v1/device/index", Some(token), req).await
    }

    /// Serialises a request body into the send buffer and returns its
    /// length. A report is serialised while the core is borrowed, then
    /// sent with [`Self::send_prepared`] once it is let go.
    pub fn prepare<B: Serialize>(&mut self, body: &B) -> Result<usize, Failure> {
        serde_json_core::to_slice(body, self.tx).map_err(|_| Failure::Network)
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &mut self,
        path: &str,
        token: Option<&Token>,
        body: &B,
    ) -> Result<R, Failure> {
        let len = self.prepare(body)?;
        self.send_prepared(token, path, len).await
    }

    /// Sends the first `len` bytes of the send buffer to `path` within
    /// [`REQUEST_TIMEOUT`] and reads the answer as `R`, or as a refusal.
    pub async fn send_prepared<R: DeserializeOwned>(
        &mut self,
        token: Option<&Token>,
        path: &str,
        len: usize,
    ) -> Result<R, Failure> {
        let mut url: heapless::String<160> = heapless::String::new();
        url.push_str(self.base).map_err(|_| Failure::Network)?;
        url.push_str(path).map_err(|_| Failure::Network)?;
        let mut bearer: heapless::String<80> = heapless::String::new();
        if let Some(t) = token {
            bearer.push_str("Bearer ").map_err(|_| Failure::Network)?;
            bearer.push_str(t.as_str()).map_err(|_| Failure::Network)?;
        }
        let (tcp, dns) = (self.tcp, self.dns);
        let tls = self.tls.as_mut().map(|t| {
            let verify = TlsVerify::Certificate {
                ca: t.ca,
                cert: None,
                key: None,
            };
            TlsConfig::new((t.random)(), t.rx, t.tx, verify)
        });
        let exchange = async {
            let mut client = match tls {
                Some(config) => HttpClient::new_with_tls(tcp, dns, config),
                None => HttpClient::new(tcp, dns),
            };
            let auth = [("Authorization", bearer.as_str())];
            let headers: &[(&str, &str)] = if token.is_some() { &auth } else { &[] };
            let mut request = client
                .request(Method::POST, &url)
                .await
                .map_err(|_| Failure::Network)?
                .headers(headers)
                .content_type(ContentType::ApplicationJson)
                .body(&self.tx[..len]);
            let response = request.send(self.rx).await.map_err(|_| Failure::Network)?;
            let ok = response.status.is_successful();
            let body = response
                .body()
                .read_to_end()
                .await
                .map_err(|_| Failure::Network)?;
            if ok {
                serde_json_core::from_slice::<R>(body)
                    .map(|(r, _)| r)
                    .map_err(|_| Failure::Network)
            } else {
                match serde_json_core::from_slice::<Refusal>(body) {
                    Ok((r, _)) => Err(Failure::Api(r.error)),
                    Err(_) => Err(Failure::Network),
                }
            }
        };
        with_timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or(Err(Failure::Network))
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
