//! The front of the proxy listeners: a pingora `ServerApp` around the `HttpProxy`.
//!
//! For each HTTP/1 request it waits for the first bytes with a buffer that exists only
//! while the read is polled (an idle keep-alive connection holds no read buffer and no
//! request future), reads the head
//! and checks it; a head pingora would refuse with a bare 400, or that is too large,
//! gets the gateway's JSON error here ([`refuse`]); a good one is handed to pingora as
//! its parse buffer. Prior-knowledge h2c is recognised from the bytes read, so a short
//! HTTP/1 request is never stuck waiting for a 24-byte preface. HTTP/2 (ALPN or h2c)
//! connections go to pingora's own HTTP/2 path.

pub mod head;
mod refuse;

use crate::gateway::Gateway;
use crate::proxy::GatewayProxy;
use head::Head;
use pingora_core::apps::{HttpPersistentSettings, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use pingora_proxy::HttpProxy;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long an idle keep-alive connection still waits for a request once the listeners
/// are closed.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// The proxy listeners' application.
pub struct FrontApp {
    proxy: Arc<HttpProxy<GatewayProxy>>,
    gw: Arc<Gateway>,
    /// Set by `cleanup` (the listeners are closed): idle connections end.
    closed: AtomicBool,
    closed_notify: Notify,
}

impl FrontApp {
    pub fn new(proxy: HttpProxy<GatewayProxy>, gw: Arc<Gateway>) -> Self {
        Self {
            proxy: Arc::new(proxy),
            gw,
            closed: AtomicBool::new(false),
            closed_notify: Notify::new(),
        }
    }

    fn h2c(&self) -> bool {
        self.proxy.server_options.as_ref().is_some_and(|o| o.h2c)
    }

    /// Resolves once the service is cleaning up (its listeners are gone).
    async fn until_closed(&self) {
        let notified = self.closed_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// Serves HTTP/1 requests on `stream` until it closes or is not kept alive.
    async fn serve_h1(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) {
        let mut h2c = stream.get_ssl_digest().is_none() && self.h2c();
        let mut persistent: Option<HttpPersistentSettings> = None;
        loop {
            let (keepalive, limit) = {
                let rt = self.gw.live.load();
                (Duration::from_secs(rt.keepalive_secs), rt.max_header_bytes)
            };
            let outcome = {
                let read = async {
                    let head = head::read(&mut stream, h2c, limit).await;
                    (head, Instant::now())
                };
                tokio::pin!(read);
                tokio::select! {
                    biased;
                    r = pingora_timeout::timeout(keepalive, read.as_mut()) => r.ok(),
                    _ = self.until_closed() => {
                        // the listeners are closed (shutdown, upgrade): a request a client
                        // sends on this idle connection right now is still answered (with
                        // `Connection: close`) instead of the connection closing under it
                        pingora_timeout::timeout(DRAIN_IDLE.min(keepalive), read.as_mut())
                            .await
                            .ok()
                    }
                }
            };
            let Some((head, start)) = outcome else {
                return;
            };
            let buf = match head {
                Head::Closed => return,
                Head::Refused(refusal, seen) => {
                    refuse::answer(&self.gw, stream, refusal, seen, start).await;
                    return;
                }
                Head::H2c(preface) => {
                    let Some(stream) = rewind(stream, &preface) else {
                        return;
                    };
                    ServerApp::process_new(&self.proxy, stream, shutdown).await;
                    return;
                }
                Head::Ready(buf) => buf,
            };
            h2c = false;
            let mut session = ServerSession::new_http1(stream);
            match persistent.take() {
                Some(p) => p.apply_to_session(&mut session),
                None => {
                    // as pingora sets up a new connection
                    let ka = (!*shutdown.borrow()).then_some(keepalive.as_secs());
                    session.set_keepalive(ka);
                    session.set_keepalive_reuses_remaining(
                        self.proxy
                            .server_options
                            .as_ref()
                            .and_then(|o| o.keepalive_request_limit),
                    );
                }
            }
            session.set_pipelined_prefix(buf);
            // built in its box, not copied there (vendor patch 0010)
            let request = self.proxy.process_new_http_in_place(session, shutdown);
            let Some(reused) = request.await else {
                return;
            };
            let (s, p) = reused.consume();
            stream = s;
            persistent = p;
        }
    }
}

/// Puts bytes read back in front of a plain TCP stream.
fn rewind(stream: Stream, bytes: &[u8]) -> Option<Stream> {
    match stream
        .into_any()
        .downcast::<pingora_core::protocols::l4::stream::Stream>()
    {
        Ok(mut l4) => {
            l4.rewind(bytes);
            let stream: Stream = l4;
            Some(stream)
        }
        Err(_) => {
            tracing::debug!("h2c preface on a stream that cannot rewind");
            None
        }
    }
}

#[async_trait::async_trait]
impl ServerApp for FrontApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.proxy, stream, shutdown).await;
        }
        self.serve_h1(stream, shutdown).await;
        None
    }

    async fn cleanup(&self) {
        self.closed.store(true, Ordering::Release);
        self.closed_notify.notify_waiters();
        ServerApp::cleanup(&*self.proxy).await;
    }
}
