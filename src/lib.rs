//! api-gateway: an edge API gateway on Cloudflare's Pingora. See README.md.

pub mod admin;
pub mod config;
pub mod env;
pub mod flows;
pub mod front;
pub mod gateway;
pub mod lifecycle;
pub mod observability;
pub mod openapi;
pub mod paths;
pub mod proxy;
pub mod reload;
pub mod router;
pub mod runtime;
pub mod server;
pub mod tls_listener;
pub mod upstream;
