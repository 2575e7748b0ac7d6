//! Security headers on every answer (OWASP ASVS V14.4).
//!
//! The web application loads only its own stylesheet and script and draws
//! its charts as inline SVG, so the Content-Security-Policy can forbid
//! everything else: no inline script, no other origin, no framing, forms
//! posting only here. Answers are never cached: they are patient data or
//! single-use tokens.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::client::Client;

/// The policy: our own script, style and live-update stream, nothing else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// HSTS when served over HTTPS: browsers keep to HTTPS for a year.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// The middleware: [`add`]s the headers to every answer, HSTS when the
/// request's client reached us over HTTPS.
pub async fn added(req: Request, next: Next) -> Response {
    let https = req.extensions().get::<Client>().is_some_and(|c| c.https);
    add(next.run(req).await, https)
}

/// Adds the security headers a handler did not set itself; `https` adds
/// HSTS.
pub fn add(mut response: Response, https: bool) -> Response {
    let headers = response.headers_mut();
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    let fixed: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}
