//! The form extractor of the web application: axum's `Form`, with a
//! refusal rendered like every other web error (an HTML page saying what
//! was wrong), not axum's plain-text rejection.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::ApiError;
use crate::web::WebError;

/// A URL-encoded form body of type `T`.
#[derive(Debug)]
pub struct Form<T>(pub T);

impl<S, T> FromRequest<S> for Form<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Form(value)),
            Err(rejection) => Err(WebError::Api(ApiError::new(
                infusion_protocol::ErrorCode::InvalidBody,
                format!("this form could not be read: {}", rejection.body_text()),
            ))),
        }
    }
}
