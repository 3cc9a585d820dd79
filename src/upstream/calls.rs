//! The gateway's [`UpstreamCalls`] for plugins: the pools of the table now serving, by
//! name, called through [`super::call`]. The gateway installs it in the plugins'
//! `Shared` at start-up and hands it each new table's pools when the table goes live.

use super::call::{self, CallError, Clients};
use super::Pool;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use gateway_plugins::{UpstreamCallError, UpstreamCalls, UpstreamRequest, UpstreamResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The pools by name.
pub type Pools = BTreeMap<String, Arc<Pool>>;

/// Calls to the live table's pools; see the module docs.
#[derive(Default)]
pub struct PoolCalls {
    pools: ArcSwap<Pools>,
    clients: Clients,
}

impl PoolCalls {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The pools of the table that just went live.
    pub fn set_pools(&self, pools: &Pools) {
        self.pools.store(Arc::new(pools.clone()));
    }
}

#[async_trait]
impl UpstreamCalls for PoolCalls {
    async fn call(
        &self,
        upstream: &str,
        req: UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamCallError> {
        let Some(pool) = self.pools.load().get(upstream).cloned() else {
            return Err(UpstreamCallError::UnknownUpstream(upstream.to_string()));
        };
        if !req.path.starts_with('/') {
            return Err(UpstreamCallError::InvalidRequest(format!(
                "the path `{}` does not start with `/`",
                req.path
            )));
        }
        let retry_unsafe = super::idempotent(&req.method);
        let sent = call::call(
            &self.clients,
            call::Request {
                pool: &pool,
                method: req.method,
                path: &req.path,
                headers: req.headers,
                body: req.body,
                retry_unsafe,
                max_answer_body: req.max_answer_body,
                http2: req.http2,
            },
        );
        match tokio::time::timeout(req.timeout, sent).await {
            Err(_) => Err(UpstreamCallError::Timeout),
            Ok(Ok(a)) => Ok(UpstreamResponse {
                status: a.status,
                headers: a.headers,
                body: a.body,
                trailers: a.trailers,
            }),
            Ok(Err(e)) => Err(match e {
                CallError::NoTarget(retry_after) => UpstreamCallError::NoTarget {
                    upstream: upstream.to_string(),
                    retry_after,
                },
                CallError::Connect(e) => UpstreamCallError::Connect(e),
                CallError::Timeout => UpstreamCallError::Timeout,
                CallError::TooLarge(n) => UpstreamCallError::AnswerTooLarge(n),
                CallError::Invalid(e) => UpstreamCallError::InvalidRequest(e),
                CallError::Other(e) => UpstreamCallError::Transport(e),
            }),
        }
    }
}
