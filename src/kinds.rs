//! The one explicit list of tool kinds. This is the only file that knows them all: adding a kind
//! means writing its folder and adding one line to [`KINDS`].
//!
//! Also here: starting every kind against one registry, and the handle the server keeps to
//! reload and stop them.

use std::sync::Arc;

use crate::config::{Config, ConfigSource};
use crate::table::output::OutputFiles;
use crate::tools::Registry;
use crate::tools::kind::{KindEntry, KindError, KindHost, Reloaded, RunningKind, kind};
use crate::tools::policy::Policy;
use crate::tools::registry::RegistryError;

/// Every tool kind datamcp offers.
pub const KINDS: &[KindEntry] = &[
    kind::<crate::sql::Sql>(),
    kind::<crate::stream::Streams>(),
    // After SQL: its tools read through `sql_query`.
    kind::<crate::ml::Ml>(),
    // After the kinds whose tools workflows call, so validation finds them.
    kind::<crate::workflow::Workflows>(),
];

/// Why the server could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A kind could not start. (The reason is the error's source, which `{:#}` prints.)
    #[error("{kind} tools")]
    Kind {
        /// The kind.
        kind: &'static str,
        /// Why.
        source: KindError,
    },
    /// The registry refused the config's policies.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The started kinds, in `KINDS` order.
pub struct Kinds {
    running: Vec<Arc<dyn RunningKind>>,
}

/// Starts every kind on a new registry for `config`.
pub fn start(config: &Config) -> Result<(Arc<Registry>, Kinds), BuildError> {
    let registry = Arc::new(Registry::new(
        config.filter.clone(),
        Policy::clone(&config.default_policy),
        config.tool_policies.clone(),
    ));
    let workspace = Arc::new(config.workspace.clone());
    // Result files are the server's, whichever kind writes them.
    registry.register_resources(Arc::new(OutputFiles::new(
        workspace.output_dir.clone(),
        workspace.output_max_bytes,
    )));
    let mut running = Vec::with_capacity(KINDS.len());
    for entry in KINDS {
        let host = KindHost::new(entry.name, &registry, Arc::clone(&workspace));
        let kind = entry
            .start(&config.source, host)
            .map_err(|source| BuildError::Kind {
                kind: entry.name,
                source,
            })?;
        running.push(kind);
    }
    if config.filter.discovery {
        for tool in crate::tools::discovery::tools(&registry) {
            registry.register("server", tool)?;
        }
    }
    registry.check_policy_targets()?;
    Ok((registry, Kinds { running }))
}

impl Kinds {
    /// The server's instructions to the model: each kind's part, in order.
    pub fn instructions(&self) -> String {
        let mut text =
            String::from("datamcp gives read-only, typed access to the organisation's data.");
        for part in self.running.iter().filter_map(|kind| kind.instructions()) {
            text.push(' ');
            text.push_str(&part);
        }
        text
    }

    /// Hands an edited config file to every kind; each applies its part or keeps its last
    /// good version. Returns each kind's outcome.
    pub fn reload(
        &self,
        source: &ConfigSource,
    ) -> Vec<(&'static str, Result<Reloaded, KindError>)> {
        self.running
            .iter()
            .map(|kind| (kind.name(), kind.reload(source)))
            .collect()
    }

    /// Runs every kind's shutdown work (closing pools, stopping consumers), all at once.
    pub async fn shutdown(&self) {
        futures::future::join_all(self.running.iter().map(|kind| kind.shutdown())).await;
    }
}
