//! The form extractors of the web application: axum's `Form`, with a
//! refusal rendered like every other web error (an HTML page saying what
//! was wrong), not axum's plain-text rejection; and [`Submitted`], a form
//! of a logged-in user with its session and CSRF token checked.

use axum::extract::{FromRequest, FromRequestParts, Request};
use serde::de::DeserializeOwned;

use crate::web::WebError;
use crate::web::session::WebUser;
use crate::{ApiError, AppState};

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
            Err(rejection) => Err(WebError::Api(
                ApiError::body_too_slow(&rejection).unwrap_or_else(|| {
                    ApiError::new(
                        infusion_protocol::ErrorCode::InvalidBody,
                        format!("this form could not be read: {}", rejection.body_text()),
                    )
                }),
            )),
        }
    }
}

/// What a refused form held, as typed: its page shows it again in the
/// same fields (a clinician who typed 9.75 sees 9.75 beside the refusal,
/// not the order that is running).
#[derive(Debug, Clone, Default)]
pub struct Typed(Vec<(&'static str, String)>);

impl Typed {
    /// The fields by their `name`s.
    pub fn new(fields: Vec<(&'static str, String)>) -> Typed {
        Typed(fields)
    }

    /// The typed value of the field `name`, if the form had it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name`'s typed value, or else `shown`.
    pub fn or(&self, name: &str, shown: impl FnOnce() -> String) -> String {
        self.get(name).map_or_else(shown, str::to_owned)
    }
}

/// The parameters of a page's address, such as `/patients/{username}`.
/// One that does not parse (an alarm number that is no number) names no
/// page: 404 in the web application's own page, not axum's plain-text 400
/// naming Rust types.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, WebError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(_) => Err(WebError::Api(ApiError::new(
                infusion_protocol::ErrorCode::NotFound,
                "there is no such page: check the address, or start again from the first page",
            ))),
        }
    }
}

/// A form submitted by a logged-in user, checked in the order that
/// leaks least: the session first (without one, the browser is sent to
/// the login page before the body is read), then the form, then its CSRF
/// token (a form from another page or site is refused before anything
/// else looks at it). Every form of a logged-in page is taken through
/// this one extractor, so no handler can forget a step.
#[derive(Debug)]
pub struct Submitted<T> {
    /// Who submitted it.
    pub user: WebUser,
    /// Its fields, but the CSRF token.
    pub form: T,
}

/// A form's fields with the CSRF token every logged-in form carries.
#[derive(Debug, serde::Deserialize)]
struct WithCsrf<T> {
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

/// A form with no fields but its CSRF token (a button).
#[derive(Debug, serde::Deserialize)]
pub struct Button {}

impl<T> FromRequest<AppState> for Submitted<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = WebError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let user = WebUser::from_request_parts(&mut parts, app).await?;
        let req = Request::from_parts(parts, body);
        let Form(submitted) = Form::<WithCsrf<T>>::from_request(req, app).await?;
        user.check_csrf(&submitted.csrf)?;
        Ok(Submitted {
            user,
            form: submitted.fields,
        })
    }
}
