//! The one explicit list of tool kinds. This is the only file that knows them all: adding a kind
//! means writing its module and adding one line to [`KINDS`].

use crate::config::Config;
use crate::tools::policy::Policy;
use crate::tools::{BuiltTools, Registry, RegistryError};

/// A tool kind: a name and the function that builds its tools from the config.
pub struct ToolKind {
    /// Short name, e.g. `sql`.
    pub name: &'static str,
    /// Builds the kind's tools from the config, or says what in the config is unusable.
    /// Connections are made lazily, so this does no I/O.
    pub build: fn(&Config) -> BuiltTools,
}

/// Every tool kind datamcp offers.
pub const KINDS: &[ToolKind] = &[ToolKind {
    name: "sql",
    build: crate::sql::tools,
}];

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A kind found its part of the config unusable.
    #[error("{kind} tools: {message}")]
    Kind {
        /// The kind.
        kind: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The registry refused a tool.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Builds the registry for `config`: every kind's tools, filtered and wrapped in their policies.
pub fn registry(config: &Config) -> Result<Registry, BuildError> {
    let registry = Registry::new(
        config.filter.clone(),
        Policy::clone(&config.default_policy),
        config.tool_policies.clone(),
    );
    for kind in KINDS {
        let offer = (kind.build)(config).map_err(|message| BuildError::Kind {
            kind: kind.name,
            message,
        })?;
        for tool in offer.tools {
            registry.register(tool)?;
        }
        for provider in offer.resources {
            registry.register_resources(provider);
        }
        for check in offer.health {
            registry.register_health_check(check);
        }
        for source in offer.gauges {
            registry.register_gauges(source);
        }
    }
    registry.check_policy_targets()?;
    Ok(registry)
}
