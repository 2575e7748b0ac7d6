//! What a form tells the user it did, and Post/Redirect/Get.
//!
//! A successful form answers `303 See Other` to the page it belongs to,
//! so that a reload (or Back, then Forward) shows that page again instead
//! of posting the form a second time: without it, a reload re-posted a
//! prescription as a new version. The message for the page ("Saved as
//! version 4") travels in a one-time cookie, encrypted and authenticated
//! with a key every instance shares ([`crate::identity::ServerKeys::notice_key`]),
//! bound to the session that posted it, and removed by the page that shows
//! it. It may hold a new device secret, which is why it is encrypted and
//! not merely signed. A refused form is not redirected: it is answered 422
//! with the page and the refusal, so that the user sees what was wrong.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, IntoResponseParts, Redirect, Response, ResponseParts};
use axum_extra::extract::cookie::PrivateCookieJar;
use maud::{Markup, html};

use crate::AppState;
use crate::client::Client;
use crate::web::confirm::Confirm;
use crate::web::session::{NOTICE_COOKIE, WebUser, cookie, removal};

/// A message about what a form did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// It was done (announced politely to a screen reader).
    Done(String),
    /// It was refused, and why (announced at once).
    Refused(String),
    /// It crosses a soft limit and waits for a reason (never carried in
    /// the cookie: it answers the form that was refused).
    Confirm(Box<Confirm>),
}

impl Notice {
    /// The message on `user`'s page.
    pub fn render(&self, user: &WebUser) -> Markup {
        match self {
            Notice::Done(text) => html! { p role="status" class="notice" { (text) } },
            Notice::Refused(text) => {
                html! { p role="alert" class="notice" { (infusion_store::sentence(text)) } }
            }
            Notice::Confirm(c) => c.render(user),
        }
    }

    /// True for a refusal (a confirmation asked for is one: nothing was
    /// done).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Notice::Refused(_) | Notice::Confirm(_))
    }

    /// The cookie's plain text: the session it is for, then the message.
    fn encode(&self, user: &WebUser) -> String {
        let (kind, text) = match self {
            Notice::Done(t) => ('d', t.as_str()),
            Notice::Refused(t) => ('r', t.as_str()),
            Notice::Confirm(_) => ('r', "This order was not sent."),
        };
        format!("{}\n{kind}{text}", user.csrf)
    }

    fn decode(value: &str, user: &WebUser) -> Option<Notice> {
        let (session, rest) = value.split_once('\n')?;
        if session != user.csrf {
            return None;
        }
        let mut chars = rest.chars();
        match chars.next()? {
            'd' => Some(Notice::Done(chars.as_str().to_owned())),
            'r' => Some(Notice::Refused(chars.as_str().to_owned())),
            _ => None,
        }
    }
}

/// After a successful form: `303 See Other` to `path`, carrying `notice`.
pub fn see_other(app: &AppState, user: &WebUser, path: &str, notice: Notice) -> Response {
    let jar = PrivateCookieJar::new(app.keys.notice_key()).add(cookie(
        NOTICE_COOKIE,
        notice.encode(user),
        user.https,
    ));
    (jar, Redirect::to(path)).into_response()
}

/// The notice cookie a page was redirected with, if any: extracted by a
/// page handler and returned with its response, so that the cookie is
/// removed (a notice is shown once).
#[derive(Debug)]
pub struct Flash {
    jar: PrivateCookieJar,
    secure: bool,
}

impl Flash {
    /// The notice for `user`'s page: `None` without one, or when it was
    /// written for another session.
    pub fn notice(&self, user: &WebUser) -> Option<Notice> {
        self.jar
            .get(NOTICE_COOKIE.get(self.secure))
            .and_then(|c| Notice::decode(c.value(), user))
    }
}

impl FromRequestParts<AppState> for Flash {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Flash {
            jar: PrivateCookieJar::from_headers(&parts.headers, app.keys.notice_key()),
            secure: parts.extensions.get::<Client>().is_some_and(|c| c.https),
        })
    }
}

impl IntoResponseParts for Flash {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if self.jar.get(NOTICE_COOKIE.get(self.secure)).is_none() {
            return Ok(res);
        }
        self.jar
            .remove(removal(NOTICE_COOKIE, self.secure))
            .into_response_parts(res)
    }
}
