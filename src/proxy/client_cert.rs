//! The client certificate of an mTLS connection, for the `mtls` plugin.

use gateway_plugins::ClientCert;
use pingora_proxy::Session;

/// The client certificate the TLS listener verified, if any. The TLS listener does not
/// request client certificates yet (`server.tls.client_ca` is not built), so this is
/// always `None` today.
pub(super) fn client_cert(_session: &Session) -> Option<ClientCert> {
    None
}
