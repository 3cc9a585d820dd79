//! The shape of routes.yaml, version 1. Every struct refuses unknown fields. The JSON
//! Schema in `docs/routes.schema.json` is generated from these types (`api-gateway schema`).

use super::units::{ByteSize, Dur};
use super::{RouteConfig, UpstreamConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole route table.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version; only `1` exists.
    pub version: u32,
    /// Listener-level settings. `tls` and `grace_period` are read at start-up only (a
    /// reload that changes `tls` logs that a restart is needed); `max_body_size`
    /// applies on reload like everything else.
    #[serde(default)]
    pub server: ServerConfig,
    /// Named upstream pools, referenced by routes.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes; the most specific match wins, ties go to the first in the file.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Global plugins: they run for every route, before the route's own, as listed. A
    /// route turns one off with `{ name: <plugin>, enabled: false }`, or replaces its
    /// settings by listing a plugin of the same name.
    #[serde(default)]
    pub plugins: Vec<super::PluginConfig>,
}

/// Listener-level settings (fixed at start-up).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// A TLS listener (HTTP/1.1 and HTTP/2 via ALPN) beside the plain one.
    pub tls: Option<TlsConfig>,
    /// Largest request body accepted on any route (default `100MiB`); a route may lower
    /// or raise it with `max_body_size`. Larger bodies get 413.
    pub max_body_size: Option<ByteSize>,
    /// Largest request head (request line and headers) accepted (default `64KiB`).
    /// Larger heads get 431.
    pub max_header_size: Option<ByteSize>,
    /// Idle time after which a client's keep-alive connection is closed (default
    /// `60s`; at least `1s`).
    pub keepalive_timeout: Option<Dur>,
    /// Time a graceful shutdown waits for requests in flight (default `10s`).
    pub grace_period: Option<Dur>,
    /// After SIGTERM, `/ready` answers 503 at once but listeners keep accepting for this
    /// long, so that load balancers stop sending traffic first (default `5s`; read at
    /// start-up).
    pub shutdown_delay: Option<Dur>,
    /// Encoded characters every route takes in its path (default none: a path with
    /// `%2F`, `%5C`, `%3B`, `%25`, `%3F` or `%23`, or a raw `\` or `;`, is refused
    /// `400 ambiguous_path`); a route adds its own with `allow_encoded`.
    #[serde(default)]
    pub allow_encoded: Vec<super::EncodedChar>,
    /// Request headers whose name contains `_`: `drop` (default), `reject` (400) or
    /// `keep`.
    #[serde(default)]
    pub underscore_headers: super::UnderscoreHeaders,
}

/// A TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Listen address, e.g. `0.0.0.0:8443`.
    pub listen: String,
    /// PEM certificate chain file.
    pub cert: String,
    /// PEM private key file.
    pub key: String,
    /// PEM bundle of the CAs that sign client certificates (mTLS). With it, the
    /// listener asks clients for a certificate and verifies the ones sent; the `mtls`
    /// plugin then reads it. A certificate that does not verify fails the handshake.
    pub client_ca: Option<String>,
    /// With `client_ca`: PEM file of the certificate revocation lists (CRLs) of those
    /// CAs, relative to routes.yaml. A client certificate it revokes fails the
    /// handshake; so does one whose CA has no CRL in the file. Re-read on every reload
    /// (a bad file refuses the reload, the previous lists keep applying).
    pub client_crl: Option<String>,
    /// With `client_ca`: `optional` (default; clients without a certificate still
    /// connect, and only routes with the `mtls` plugin refuse them) or `required`
    /// (every TLS client must present a valid certificate).
    #[serde(default)]
    pub client_auth: ClientAuth,
}

/// Whether TLS clients must present a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Optional,
    Required,
}
