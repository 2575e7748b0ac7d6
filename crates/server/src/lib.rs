//! The infusion server: device API v1 over HTTP, on any [`Store`].
//!
//! [`Application`] binds a listener (port 0 picks a free one, which is how
//! every test runs its own server) and serves [`router`]. Handlers live in
//! [`api`], one module per resource; they speak to the store through the
//! [`Store`] trait and answer every failure through the one [`ApiError`].
//!
//! [`Store`]: infusion_store::Store
//! [`ApiError`]: error::ApiError

pub mod api;
pub mod app;
pub mod client;
pub mod clock;
pub mod config;
pub mod conn_limit;
pub mod decision;
pub mod device_login;
pub mod error;
pub mod extract;
pub mod hash_queue;
pub mod headers;
pub mod identity;
pub mod key_file;
pub mod log_limit;
pub mod notify;
pub mod oversized;
pub mod pace;
pub mod password;
pub mod refusals;
pub mod throttle;
pub mod tls;
pub mod token;
pub mod watchdog;
pub mod web;

pub use app::{AppState, Application, StartError, router};
pub use config::ServerConfig;
pub use error::ApiError;
