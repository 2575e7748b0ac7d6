//! What an administrator administers: the accounts of their own
//! institution (red team round 2: an administrator of one institution saw
//! and changed another's accounts). Every administrator page and form
//! goes through [`Scope::of`]; a name outside it is answered as unknown,
//! so that other institutions' usernames are not revealed either. The
//! `infusion admin` command line, run on the server by its operator, is
//! not scoped.

use infusion_store::{AccountOverview, Role, StoreError};

use crate::AppState;
use crate::web::WebError;
use crate::web::session::WebUser;

/// An administrator's institution and its accounts.
#[derive(Debug)]
pub struct Scope {
    /// The institution's name.
    pub institution: String,
    /// Its accounts, by role then username.
    pub accounts: Vec<AccountOverview>,
}

impl Scope {
    /// The scope of `user`, who must be an administrator.
    pub async fn of(app: &AppState, user: &WebUser) -> Result<Scope, WebError> {
        if user.session.role != Role::Admin {
            return Err(WebError::forbidden("administer accounts and devices"));
        }
        let all = app.store.accounts().await?;
        let institution = all
            .iter()
            .find(|a| a.username == user.session.username)
            .and_then(|a| a.institution.clone())
            .ok_or_else(|| WebError::forbidden("administer accounts without an institution"))?;
        let accounts = all
            .into_iter()
            .filter(|a| a.institution.as_deref() == Some(institution.as_str()))
            .collect();
        Ok(Scope {
            institution,
            accounts,
        })
    }

    /// The account `username` of this institution, of `role` if given;
    /// refused as unknown otherwise.
    pub fn account(
        &self,
        username: &str,
        role: Option<Role>,
    ) -> Result<&AccountOverview, StoreError> {
        self.accounts
            .iter()
            .find(|a| a.username == username && role.is_none_or(|r| a.role == r))
            .ok_or_else(|| {
                let what = role.map_or("account", Role::as_str);
                StoreError::NotFound(format!(
                    "no {what} named {username:?} at {}",
                    self.institution
                ))
            })
    }

    /// Whether a security event of `actor` is this institution's: one of
    /// its users or pumps, or no account's (an address slowed, the server's
    /// keys moved), which concerns every administrator.
    pub fn may_see(&self, actor: &str) -> bool {
        if let Some(name) = actor.strip_prefix("user:") {
            return self.accounts.iter().any(|a| a.username == name);
        }
        if let Some(mac) = actor.strip_prefix("device:") {
            return self
                .accounts
                .iter()
                .any(|a| a.device.as_deref() == Some(mac));
        }
        true
    }

    /// Accounts of `role`.
    pub fn of_role(&self, role: Role) -> impl Iterator<Item = &AccountOverview> {
        self.accounts.iter().filter(move |a| a.role == role)
    }
}
