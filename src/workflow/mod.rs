//! Composite workflows: a workflow file becomes one MCP tool that runs a DAG of other tools.
//!
//! `file.rs` is the format, `plan.rs` the static validation that turns files into plans,
//! `run.rs` the engine, `tools.rs` the tools (each workflow, `workflow_run`,
//! `workflow_run_status`, `transform`), `history.rs` the last runs as resources, `graph.rs` the
//! Mermaid and Graphviz pictures. A workflow reaches other tools only through the registry
//! ([`KindHost`]), never by importing another kind.

pub mod file;
pub mod graph;
pub mod history;
pub mod plan;
pub mod run;
pub mod tools;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::Deserialize;

use self::history::{History, RunResources};
use self::plan::{Plan, Problem, parse_yaml, plan_batch};
use self::tools::{HostCatalog, RunInline, RunStatusTool, Runner, Transform, WorkflowTool};
use crate::config::ConfigSource;
use crate::config::watch::FileWatch;
use crate::tools::kind::{Kind, KindError, KindHost, Reloaded};
use crate::tools::registry::Registration;
use crate::tools::{DynTool, typed};

/// The example workflows, served on the demo data when there is no config file.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "examples/workflows/sales_by_country.yaml",
        include_str!("../../examples/workflows/sales_by_country.yaml"),
    ),
    (
        "examples/workflows/top_products_report.yaml",
        include_str!("../../examples/workflows/top_products_report.yaml"),
    ),
    (
        "examples/workflows/order_health.yaml",
        include_str!("../../examples/workflows/order_health.yaml"),
    ),
    (
        "examples/workflows/customer_overview.yaml",
        include_str!("../../examples/workflows/customer_overview.yaml"),
    ),
    (
        "examples/workflows/payments_vs_history.yaml",
        include_str!("../../examples/workflows/payments_vs_history.yaml"),
    ),
    (
        "examples/workflows/model_release_gate.yaml",
        include_str!("../../examples/workflows/model_release_gate.yaml"),
    ),
];

/// The workflow keys of the config file.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct WorkflowsFile {
    /// Composite workflows: each workflow file becomes one tool.
    pub workflows: Option<WorkflowsSection>,
}

/// `[workflows]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowsSection {
    /// Workflow files, and folders whose `*.yaml`/`*.yml` files are workflows; relative to the
    /// config file. Watched: edits are validated and swapped in while serving.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Also serve the example workflows on the demo data (default: only without a config file).
    pub examples: Option<bool>,
    /// Runs kept in the history, per server (default 50).
    pub history: Option<usize>,
}

/// Where the workflows come from.
#[derive(Debug, Clone, PartialEq)]
struct Sources {
    paths: Vec<PathBuf>,
    examples: bool,
}

impl Sources {
    fn of(file: &WorkflowsFile, source: &ConfigSource) -> Result<Self, KindError> {
        let section = file.workflows.clone().unwrap_or_default();
        let paths = section
            .paths
            .iter()
            .map(|path| source.path(path, "workflows.paths"))
            .collect::<Result<_, _>>()?;
        Ok(Sources {
            paths,
            examples: section.examples.unwrap_or(source.is_none()),
        })
    }

    /// Every workflow file's origin and text, and the problems reading them.
    fn read(&self) -> (Vec<(String, String)>, Vec<Problem>) {
        let mut texts = Vec::new();
        let mut problems = Vec::new();
        if self.examples {
            texts.extend(
                EXAMPLES
                    .iter()
                    .map(|(origin, text)| ((*origin).to_owned(), (*text).to_owned())),
            );
        }
        for path in &self.paths {
            let files = if path.is_dir() {
                match std::fs::read_dir(path) {
                    Ok(entries) => {
                        let mut files: Vec<PathBuf> = entries
                            .filter_map(Result::ok)
                            .map(|e| e.path())
                            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                            .collect();
                        files.sort();
                        files
                    }
                    Err(error) => {
                        problems.push(read_problem(path, &error));
                        continue;
                    }
                }
            } else {
                vec![path.clone()]
            };
            for file in files {
                match std::fs::read_to_string(&file) {
                    Ok(text) => texts.push((file.display().to_string(), text)),
                    Err(error) => problems.push(read_problem(&file, &error)),
                }
            }
        }
        (texts, problems)
    }
}

fn read_problem(path: &std::path::Path, error: &std::io::Error) -> Problem {
    Problem {
        origin: path.display().to_string(),
        at: String::new(),
        message: format!("cannot read it: {error}"),
    }
}

/// Reads, parses and validates every workflow of `sources` against the registry: the plans,
/// or every problem.
fn load(sources: &Sources, host: &KindHost) -> Result<Vec<Plan>, Vec<Problem>> {
    let (texts, mut problems) = sources.read();
    let mut files = Vec::new();
    for (origin, text) in texts {
        match parse_yaml(&origin, &text) {
            Ok(file) => files.push((origin, file)),
            Err(problem) => problems.push(problem),
        }
    }
    let (plans, mut found) = plan_batch(files, &HostCatalog(host), host.read_only());
    problems.append(&mut found);
    if problems.is_empty() {
        Ok(plans)
    } else {
        Err(problems)
    }
}

/// Validates workflow files against the tools of `host`'s registry (the command line's
/// `workflow validate`, `run` and `graph`): the plans, or every problem.
pub fn plan_files(paths: &[PathBuf], host: &KindHost) -> Result<Vec<Plan>, Vec<Problem>> {
    load(
        &Sources {
            paths: paths.to_vec(),
            examples: false,
        },
        host,
    )
}

/// The workflow kind.
pub struct Workflows {
    inner: Arc<Inner>,
}

struct Inner {
    host: KindHost,
    runner: Runner,
    /// The built-in tools, kept so that a reload re-registers the same versions.
    builtin: Vec<(Arc<dyn DynTool>, bool)>,
    sources: Mutex<Sources>,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Inner {
    /// Registers the built-in tools and the plans as the kind's whole tool set.
    fn install(&self, plans: Vec<Plan>) -> Result<(), KindError> {
        let mut registrations: Vec<Registration> = self
            .builtin
            .iter()
            .map(|(tool, internal)| {
                if *internal {
                    Registration::internal(Arc::clone(tool))
                } else {
                    Registration::listed(Arc::clone(tool))
                }
            })
            .collect();
        registrations.extend(
            plans
                .into_iter()
                .map(|plan| Registration::listed(WorkflowTool::build(plan, self.runner.clone()))),
        );
        self.host.replace_tools(registrations)?;
        Ok(())
    }

    /// Re-reads the workflow files: swapped in when every one checks out, else every problem
    /// logged and the last good version kept.
    fn reload_files(&self) {
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match load(&sources, &self.host).map_err(|problems| problems_error(&problems)) {
            Ok(plans) => {
                let count = plans.len();
                match self.install(plans) {
                    Ok(()) => tracing::info!(workflows = count, "workflows reloaded"),
                    Err(error) => tracing::error!(
                        "workflows not reloaded; the last good version keeps serving: {error}"
                    ),
                }
            }
            Err(error) => {
                tracing::error!(
                    "workflows not reloaded; the last good version keeps serving: {error}"
                );
            }
        }
    }

    /// Watches the workflow files, reloading them on every edit.
    fn watch(self: &Arc<Self>) {
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut watcher = self.watcher.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = watcher.take() {
            old.abort();
        }
        if sources.paths.is_empty() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let inner = Arc::downgrade(self);
        *watcher = Some(tokio::spawn(async move {
            let mut changes = FileWatch::new(&sources.paths, false);
            while changes.changed().await.is_some() {
                let Some(inner) = inner.upgrade() else { return };
                inner.reload_files();
            }
        }));
    }
}

fn problems_error(problems: &[Problem]) -> KindError {
    KindError::Problems {
        what: "invalid workflow files".to_owned(),
        problems: problems.iter().map(ToString::to_string).collect(),
    }
}

impl Kind for Workflows {
    const NAME: &'static str = "workflow";
    type File = WorkflowsFile;

    fn start(
        file: WorkflowsFile,
        source: &ConfigSource,
        host: KindHost,
    ) -> Result<Self, KindError> {
        let sources = Sources::of(&file, source)?;
        let history = Arc::new(History::new(
            file.workflows
                .as_ref()
                .and_then(|w| w.history)
                .unwrap_or(50),
        ));
        let runner = Runner {
            host: host.clone(),
            history: Arc::clone(&history),
        };
        let builtin = vec![
            (RunInline::build(runner.clone()), false),
            (RunStatusTool::build(Arc::clone(&history)), false),
            // Reshaping is a step like any other, but not something to offer a model alone.
            (typed(Transform), true),
        ];
        host.add_resources(Arc::new(RunResources(history)));
        let inner = Arc::new(Inner {
            host,
            runner,
            builtin,
            sources: Mutex::new(sources.clone()),
            watcher: Mutex::new(None),
        });
        // The built-in tools first: workflows may call `transform`.
        inner.install(Vec::new())?;
        let plans = load(&sources, &inner.host).map_err(|p| problems_error(&p))?;
        inner.install(plans)?;
        inner.watch();
        Ok(Workflows { inner })
    }

    fn reload(&self, file: WorkflowsFile, source: &ConfigSource) -> Result<Reloaded, KindError> {
        let sources = Sources::of(&file, source)?;
        if *self.inner.sources.lock().unwrap_or_else(|p| p.into_inner()) == sources {
            return Ok(Reloaded::default());
        }
        // Nothing changes, the watched folders included, unless the new sources load.
        let plans = load(&sources, &self.inner.host).map_err(|p| problems_error(&p))?;
        self.inner.install(plans)?;
        *self.inner.sources.lock().unwrap_or_else(|p| p.into_inner()) = sources;
        self.inner.watch();
        Ok(Reloaded::default())
    }

    fn instructions(&self) -> Option<String> {
        Some(
            "Workflow tools run several steps in one call and return one answer with a report \\
             per step; prefer one when it fits the question. workflow_run batches your own plan \\
             of tool calls into one round trip."
                .to_owned(),
        )
    }

    fn shutdown(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async {
            if let Some(watcher) = self
                .inner
                .watcher
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                watcher.abort();
            }
        })
    }
}
