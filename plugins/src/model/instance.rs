//! A built plugin with the name it was configured by: the registry puts
//! [`crate::Factory::NAME`] beside the instance, so a plugin's name is written once.

use super::Plugin;
use std::sync::Arc;

/// One plugin of a chain: the instance and its routes.yaml name. It derefs to the
/// [`Plugin`], so the phases are called on it directly.
#[derive(Clone)]
pub struct Instance {
    name: &'static str,
    plugin: Arc<dyn Plugin>,
}

impl Instance {
    pub fn new(name: &'static str, plugin: Arc<dyn Plugin>) -> Self {
        Self { name, plugin }
    }

    /// The name used in routes.yaml (spans, logs).
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl std::ops::Deref for Instance {
    type Target = dyn Plugin;

    fn deref(&self) -> &Self::Target {
        &*self.plugin
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Instance").field(&self.name).finish()
    }
}
