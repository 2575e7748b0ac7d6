//! The device API's request bodies and bearer header, decoded exactly as
//! the server decodes them (its own extractors, `infusion_server::extract`).
//!
//! Whatever the bytes, decoding never panics, and either gives a value that
//! encodes and decodes back to itself, or a refusal with one of the body
//! error codes and a 4xx status: never a 500, never a stack trace.
#![no_main]

use std::fmt::Debug;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, Request};
use infusion_protocol::{ErrorCode, IndexRequest, LoginRequest, ReportRequest, Token};
use infusion_server::extract::{Bearer, Json};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

async fn body<T>(bytes: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + Debug + Send + 'static,
{
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/device/x")
        .header("content-type", "application/json")
        .body(Body::from(bytes.to_vec()))
        .expect("a request");
    match Json::<T>::from_request(req, &()).await {
        Ok(Json(value)) => {
            let again = serde_json::to_vec(&value).expect("a decoded value encodes");
            let back: T = serde_json::from_slice(&again).expect("and decodes again");
            assert_eq!(back, value);
        }
        Err(e) => {
            assert!(
                matches!(
                    e.code,
                    ErrorCode::MalformedJson
                        | ErrorCode::InvalidBody
                        | ErrorCode::PayloadTooLarge
                        | ErrorCode::UnsupportedMediaType
                ),
                "{e:?}"
            );
            assert!(e.status().is_client_error(), "{e:?}");
        }
    }
}

async fn bearer(bytes: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(bytes) else {
        return;
    };
    let req = Request::builder()
        .header("authorization", value)
        .body(())
        .expect("a request");
    let (mut parts, ()) = req.into_parts();
    match Bearer::from_request_parts(&mut parts, &()).await {
        Ok(Bearer(token)) => assert!(Token::parse(token.as_str()).is_ok()),
        Err(e) => assert_eq!(e.code, ErrorCode::TokenInvalid),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    runtime().block_on(async {
        match which % 4 {
            0 => body::<LoginRequest>(rest).await,
            1 => body::<IndexRequest>(rest).await,
            2 => body::<ReportRequest>(rest).await,
            _ => bearer(rest).await,
        }
    });
});
