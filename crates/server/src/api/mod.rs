//! HTTP resources, one module each, each with its `router()`.

pub mod device;
pub mod health;
pub mod openapi;
