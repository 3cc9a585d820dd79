//! `body_limit`: the largest request body a route takes. The plugin does not read the
//! body itself: it lowers the route's body limit (the smaller of `max_body_size` and
//! this), which the gateway enforces from `Content-Length` before reading and while
//! streaming. Over it: 413.
//!
//! ```yaml
//! - { name: body_limit, max: 1MiB }
//! ```

use super::units::Size;
use crate::{BuildCtx, Factory, Plugin, SettingsError};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// Body limit settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BodyLimitSettings {
    /// The largest body: bytes, or `512KB`, `10MiB`...
    pub max: Size,
}

pub struct BodyLimit {
    max: u64,
}

#[async_trait]
impl Plugin for BodyLimit {
    fn stage(&self) -> crate::Stage {
        crate::Stage::Limit
    }

    fn body_limit(&self) -> Option<u64> {
        Some(self.max)
    }
}

impl Factory for BodyLimit {
    const NAME: &'static str = "body_limit";
    const SUMMARY: &'static str =
        "Largest request body of a route, from Content-Length and while streaming; over it: 413";
    type Settings = BodyLimitSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc::answers([crate::ApiAnswer::new(
            413,
            "The body is larger than the route's `body_limit`.",
            &[],
        )])
    }

    fn build(s: BodyLimitSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(BodyLimit { max: s.max.0 }))
    }
}
