//! HTTP for the simulated pump: one function per device API request.

use infusion_protocol::{
    ChallengeResponse, DeviceSecret, ErrorBody, Event, IndexRequest, IndexResponse, LoginRequest,
    LoginResponse, PatientId, ReportRequestRef, ReportResponse, Token,
};
use infusion_pump_core::Failure;
use serde::de::DeserializeOwned;

/// Why a transport could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// A device API client on one server.
#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    base: String,
}

impl Transport {
    /// A client for the server at `base` (like `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Transport {
        // reqwest is built without a TLS provider of its own (ring only):
        // make ring the process default before building any client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Transport {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// A client for the server at `base` (`https://...`) that trusts only
    /// the certificate authorities in `ca_pem`, as a pump provisioned with
    /// its hospital's authority does: a server whose certificate that
    /// authority did not sign is refused, whatever the system trusts.
    pub fn trusting(base: &str, ca_pem: &[u8]) -> Result<Transport, TransportError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let anchors = reqwest::Certificate::from_pem_bundle(ca_pem)
            .map_err(|e| TransportError(format!("certificate authority: {e}")))?;
        if anchors.is_empty() {
            return Err(TransportError(
                "no certificate in the authority file".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .tls_certs_only(anchors)
            .https_only(true)
            .build()
            .map_err(|e| TransportError(format!("TLS client: {e}")))?;
        Ok(Transport {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    async fn post<B: serde::Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&Token>,
        body: &B,
    ) -> Result<R, Failure> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t.as_str());
        }
        let resp = req.send().await.map_err(|_| Failure::Network)?;
        let ok = resp.status().is_success();
        let bytes = resp.bytes().await.map_err(|_| Failure::Network)?;
        if ok {
            serde_json::from_slice(&bytes).map_err(|_| Failure::Network)
        } else {
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => Err(Failure::Api(e.error)),
                Err(_) => Err(Failure::Network),
            }
        }
    }

    /// `POST /api/v1/device/challenge`, then `POST /api/v1/device/login`
    /// with the nonce signed by `secret`. Without a secret, the paper's
    /// login (accepted only by `infusion serve --paper-login`).
    pub async fn login(
        &self,
        req: &LoginRequest,
        secret: Option<&DeviceSecret>,
    ) -> Result<LoginResponse, Failure> {
        let Some(secret) = secret else {
            return self.post("/api/v1/device/login", None, req).await;
        };
        let challenge: ChallengeResponse = self.post("/api/v1/device/challenge", None, &()).await?;
        let mut req = req.clone();
        req.answer(challenge.nonce, secret);
        self.post("/api/v1/device/login", None, &req).await
    }

    /// `POST /api/v1/device/index`.
    pub async fn index(
        &self,
        token: &Token,
        patient_id: PatientId,
    ) -> Result<IndexResponse, Failure> {
        self.post(
            "/api/v1/device/index",
            Some(token),
            &IndexRequest { patient_id },
        )
        .await
    }

    /// `POST /api/v1/device/report`.
    pub async fn report(
        &self,
        token: &Token,
        patient_id: PatientId,
        events: &[Event],
    ) -> Result<ReportResponse, Failure> {
        self.post(
            "/api/v1/device/report",
            Some(token),
            &ReportRequestRef { patient_id, events },
        )
        .await
    }
}
