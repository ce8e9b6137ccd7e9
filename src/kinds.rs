//! The one explicit list of tool kinds. This is the only file that knows them all: adding a kind
//! means writing its module and adding one line to [`KINDS`].

use std::sync::Arc;

use crate::config::Config;
use crate::tools::policy::Policy;
use crate::tools::{DynTool, Registry, RegistryError};

/// A tool kind: a name and the function that builds its tools from the config.
pub struct ToolKind {
    /// Short name, e.g. `sql`.
    pub name: &'static str,
    /// Builds the kind's tools; connections are made lazily, so this does no I/O.
    pub build: fn(&Config) -> Vec<Arc<dyn DynTool>>,
}

/// Every tool kind datamcp offers.
pub const KINDS: &[ToolKind] = &[ToolKind {
    name: "sql",
    build: crate::sql::tools,
}];

/// Builds the registry for `config`: every kind's tools, filtered and wrapped in their policies.
pub fn registry(config: &Config) -> Result<Registry, RegistryError> {
    let registry = Registry::new(
        config.filter.clone(),
        Policy::clone(&config.default_policy),
        config.tool_policies.clone(),
    );
    for kind in KINDS {
        for tool in (kind.build)(config) {
            registry.register(tool)?;
        }
    }
    registry.check_policy_targets()?;
    Ok(registry)
}
