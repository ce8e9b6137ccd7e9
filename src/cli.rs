//! The command line: `serve` (stdio or HTTP), `tools`, `schemas`, `call` and `check-sql`.
//!
//! Errors end here: library errors get their context and become exit codes (0 success, 1 failure
//! or refusal, 2 usage error). In `serve` mode nothing but protocol goes to stdout.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::config::watch::FileWatch;
use crate::config::{Config, HttpSettings};
use crate::kinds::Kinds;
use crate::prompts::PromptLibrary;
use crate::server::http::HttpEndpoint;
use crate::server::{self, DataMcp};
use crate::sql::guard::{self, Dialect};
use crate::tools::{Invocation, Registry};

/// datamcp: safe, fast, typed access to your data for LLM agents, over MCP.
#[derive(Debug, Parser)]
#[command(name = "datamcp", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format on stderr: human-readable text, or one JSON object per line.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "DATAMCP_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP over stdio (what agent hosts launch), or over HTTP with --http. Logs go to stderr.
    Serve {
        /// Config file (TOML); without one, the embedded demo warehouse is served.
        #[arg(long, env = "DATAMCP_CONFIG")]
        config: Option<PathBuf>,
        /// Serve remote clients over HTTP on this address (e.g. 127.0.0.1:8080): Streamable
        /// HTTP at /mcp, HTTP+SSE at /sse. Overrides [server] http in the config.
        #[arg(long, value_name = "ADDR", conflicts_with = "stdio")]
        http: Option<SocketAddr>,
        /// Serve stdio even when the config sets [server] http.
        #[arg(long)]
        stdio: bool,
        /// Streamable HTTP without sessions, for replicas behind a load balancer.
        #[arg(long)]
        stateless: bool,
        /// Listen on a non-loopback address without tokens (only behind an authenticating proxy).
        #[arg(long)]
        allow_unauthenticated: bool,
    },
    /// List the served tools, one line each.
    Tools {
        /// Config file (TOML).
        #[arg(long, env = "DATAMCP_CONFIG")]
        config: Option<PathBuf>,
        /// Show what each listed tool costs the model: bytes and estimated tokens of its name,
        /// description and input schema, and of its output schema, with the totals.
        #[arg(long)]
        tokens: bool,
    },
    /// Write each tool's schemas and annotations, and the config schema, as JSON files.
    Schemas {
        /// Folder to write into; without it, everything is printed as one JSON document.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Config file (TOML).
        #[arg(long, env = "DATAMCP_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run one tool without an MCP client and print the result as JSON.
    Call {
        /// Tool name, e.g. sql_query.
        tool: String,
        /// Arguments as a JSON object, e.g. '{"sql": "SELECT 1"}'.
        #[arg(default_value = "{}")]
        arguments: String,
        /// Config file (TOML).
        #[arg(long, env = "DATAMCP_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate, run or draw workflow files.
    Workflow {
        #[command(subcommand)]
        action: WorkflowAction,
        /// Config file (TOML): the tools the workflows may call.
        #[arg(long, env = "DATAMCP_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// Check SQL with the read-only guard the server uses: prints `allowed` or `refused: …`.
    CheckSql {
        /// SQL dialect.
        #[arg(long, value_enum)]
        dialect: Dialect,
        /// The SQL; read from stdin when absent.
        sql: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum WorkflowAction {
    /// Check workflow files: prints each valid workflow, or every problem (exit 1).
    Validate {
        /// Workflow files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run one workflow file and print its report as JSON; progress goes to stderr.
    Run {
        /// The workflow file (YAML).
        file: PathBuf,
        /// Inputs as a JSON object, e.g. '{"countries": ["US"]}'.
        #[arg(default_value = "{}")]
        inputs: String,
    },
    /// Draw a workflow's steps and needs as a Mermaid flowchart (or Graphviz with --dot).
    Graph {
        /// The workflow file (YAML).
        file: PathBuf,
        /// Graphviz DOT instead of Mermaid.
        #[arg(long)]
        dot: bool,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, Command::Serve { .. });
    init_logging(quiet, cli.log_format);
    // One client on stdio sends one message at a time: a single-threaded runtime answers it
    // without waking other threads, which is most of a small call's cost. Queries run on the
    // drivers' own threads either way. Many HTTP clients at once want every core.
    let mut builder = if serves_http(&cli.command) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("datamcp: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("datamcp: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the command will serve HTTP: `--http`, or `[server] http` in the config.
fn serves_http(command: &Command) -> bool {
    match command {
        Command::Serve {
            http,
            stdio,
            config,
            ..
        } => {
            !stdio
                && (http.is_some()
                    || Config::load(config.as_deref()).is_ok_and(|c| c.http.listen.is_some()))
        }
        _ => false,
    }
}

fn init_logging(quiet: bool, format: LogFormat) {
    let default = if quiet { "warn" } else { "info,rmcp=warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DATAMCP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            http,
            stdio,
            stateless,
            allow_unauthenticated,
        } => {
            let loaded = Config::load(config.as_deref())?;
            let mut settings = loaded.http.clone();
            settings.stateless |= stateless;
            settings.allow_unauthenticated |= allow_unauthenticated;
            let built = build_from(loaded)?;
            if let Some(path) = config {
                tokio::spawn(reload_on_change(
                    path,
                    built.config.clone(),
                    Arc::clone(&built.kinds),
                ));
            }
            let served = match http.or(settings.listen).filter(|_| !stdio) {
                Some(address) => serve_http(built.server, address, &settings).await,
                None => {
                    tracing::info!(
                        tools = built.server.registry().list().len(),
                        "datamcp {} serving MCP on stdio",
                        env!("CARGO_PKG_VERSION")
                    );
                    server::stdio::serve(built.server, shutdown_signal())
                        .await
                        .context("stdio transport failed")
                        .map(|()| ExitCode::SUCCESS)
                }
            };
            // Whatever ended the serving, the kinds close what they opened (pools, consumers).
            built.kinds.shutdown().await;
            served
        }
        Command::Tools {
            config,
            tokens: true,
        } => {
            let server = build(config.as_deref())?.server;
            print(&context_cost(server.registry()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools { config, .. } => {
            let server = build(config.as_deref())?.server;
            let mut out = String::new();
            for entry in server.registry().list() {
                let spec = entry.tool().spec();
                let summary = spec.description.split(". ").next().unwrap_or_default();
                out.push_str(&format!(
                    "{:<20} {}\n",
                    spec.name,
                    summary.trim_end_matches('.')
                ));
            }
            print(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schemas { out, config } => {
            let server = build(config.as_deref())?.server;
            let documents = schema_documents(server.registry());
            match out {
                Some(dir) => write_schemas(&dir, &documents)?,
                None => {
                    let all: Map<String, Value> = documents.into_iter().collect();
                    print(&format!("{}\n", serde_json::to_string_pretty(&all)?))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Call {
            tool,
            arguments,
            config,
        } => {
            let built = build(config.as_deref())?;
            let server = &built.server;
            let arguments: Value = serde_json::from_str(&arguments)
                .context("the arguments are not valid JSON; pass a JSON object like '{\"sql\": \"SELECT 1\"}'")?;
            let Value::Object(arguments) = arguments else {
                anyhow::bail!(
                    "the arguments must be a JSON object, like '{{\"sql\": \"SELECT 1\"}}'"
                );
            };
            let result = server
                .registry()
                .call(
                    &tool,
                    Some(arguments),
                    Invocation::local(CancellationToken::new()),
                )
                .await;
            built.kinds.shutdown().await;
            let result = result?;
            let failed = result.is_error();
            let response = server::call_tool_result(result, built.config.result_text);
            print(&format!("{}\n", serde_json::to_string_pretty(&response)?))?;
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Workflow { action, config } => workflow(action, config.as_deref()).await,
        Command::CheckSql { dialect, sql } => {
            let sql = match sql {
                Some(sql) => sql,
                None => {
                    let mut sql = String::new();
                    std::io::stdin()
                        .read_to_string(&mut sql)
                        .context("cannot read SQL from stdin")?;
                    sql
                }
            };
            match guard::check(&sql, dialect) {
                Ok(guarded) => {
                    let left: Vec<String> = guarded
                        .functions_for_the_catalog()
                        .iter()
                        .map(|f| format!("{f}()"))
                        .collect();
                    if left.is_empty() {
                        print("allowed\n")?;
                    } else {
                        // Only a warehouse's catalog can tell whether these only read.
                        print(&format!(
                            "allowed if the database vouches for {}\n",
                            left.join(", ")
                        ))?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(reason) => {
                    print(&format!("refused: {reason}\n"))?;
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// `datamcp workflow …`: the files are validated against the tools the config serves.
async fn workflow(action: WorkflowAction, config: Option<&Path>) -> Result<ExitCode> {
    use crate::workflow::{graph, plan_files};
    let built = build(config)?;
    let host = crate::tools::kind::KindHost::new(
        "workflow-cli",
        built.server.registry(),
        Arc::new(built.config.workspace.clone()),
    );
    let files = match &action {
        WorkflowAction::Validate { files } => files.clone(),
        WorkflowAction::Run { file, .. } | WorkflowAction::Graph { file, .. } => vec![file.clone()],
    };
    let plans = match plan_files(&files, &host) {
        Ok(plans) => plans,
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!("{} problem(s); nothing was run", problems.len());
            built.kinds.shutdown().await;
            return Ok(ExitCode::FAILURE);
        }
    };
    let code = match action {
        WorkflowAction::Validate { .. } => {
            let mut out = String::new();
            for plan in &plans {
                out.push_str(&format!(
                    "ok: {} ({} steps, {} levels)\n",
                    plan.name,
                    plan.steps.len(),
                    plan.levels().len()
                ));
            }
            print(&out)?;
            ExitCode::SUCCESS
        }
        WorkflowAction::Graph { dot, .. } => {
            for plan in &plans {
                print(&if dot {
                    graph::dot(plan)
                } else {
                    graph::mermaid(plan)
                })?;
            }
            ExitCode::SUCCESS
        }
        WorkflowAction::Run { inputs, .. } => {
            let inputs: Value = serde_json::from_str(&inputs)
                .context("the inputs are not valid JSON; pass a JSON object like '{\"n\": 3}'")?;
            let Value::Object(inputs) = inputs else {
                anyhow::bail!("the inputs must be a JSON object");
            };
            let Some(plan) = plans.into_iter().next() else {
                anyhow::bail!("no workflow in the file");
            };
            crate::tools::schema::ArgumentValidator::compile(&plan.input_schema)
                .and_then(|v| v.check(&Value::Object(inputs.clone())))
                .map_err(|message| {
                    anyhow::anyhow!("the inputs do not fit the workflow: {message}")
                })?;
            let runner = crate::workflow::tools::Runner {
                host,
                history: Arc::new(crate::workflow::history::History::new(1)),
            };
            // Longer than the run's own deadline, so the run ends before the wait does.
            let ctx = crate::tools::CallContext::new(
                "cli".to_owned(),
                plan.timeout + std::time::Duration::from_secs(5),
                CancellationToken::new(),
                Some(Arc::new(StderrProgress)),
            );
            let timeout = plan.timeout;
            let report = runner.run(Arc::new(plan), inputs, &ctx, timeout).await;
            print(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
            if report.status == crate::workflow::run::RunStatus::Succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    };
    built.kinds.shutdown().await;
    Ok(code)
}

/// Progress of `workflow run`, one line per step on stderr.
struct StderrProgress;

impl crate::tools::context::ProgressSink for StderrProgress {
    fn report(&self, _progress: f64, _total: Option<f64>, message: Option<String>) {
        if let Some(message) = message {
            eprintln!("{message}");
        }
    }
}

/// A built server: the MCP handler, the started kinds, and the config they came from.
pub struct Built {
    /// The MCP handler.
    pub server: DataMcp,
    /// The started kinds, to reload and to stop.
    pub kinds: Arc<Kinds>,
    /// The config the server was built from.
    pub config: Config,
}

/// Loads the config and builds the server: every kind started, and the prompts. Every config
/// problem surfaces here, before any client connects.
pub fn build(config: Option<&Path>) -> Result<Built> {
    build_from(Config::load(config)?)
}

fn build_from(config: Config) -> Result<Built> {
    let (registry, kinds) =
        crate::kinds::start(&config).context("cannot build the tool registry")?;
    let prompts =
        PromptLibrary::load(config.prompts_dir.as_deref()).context("cannot load prompts")?;
    let server = DataMcp::new(registry, Arc::new(prompts), &kinds.instructions())
        .with_result_text(config.result_text);
    Ok(Built {
        server,
        kinds: Arc::new(kinds),
        config,
    })
}

/// Reloads the config file whenever it changes (or on SIGHUP): each kind re-checks its part and
/// swaps in what changed, and clients hear `notifications/tools/list_changed`. A file that does
/// not check out changes nothing: the last good version keeps serving, and every problem is
/// logged. Settings that only a restart applies are named in the log.
async fn reload_on_change(path: PathBuf, mut current: Config, kinds: Arc<Kinds>) {
    let mut watch = FileWatch::config(&path);
    while watch.changed().await.is_some() {
        let started = std::time::Instant::now();
        let newer = match Config::load(Some(&path)) {
            Ok(newer) => newer,
            Err(error) => {
                tracing::error!(
                    "config not reloaded; the last good version keeps serving: {error}"
                );
                continue;
            }
        };
        if newer.source.text() == current.source.text() {
            continue;
        }
        let mut restart_needed: Vec<String> = current
            .restart_needed_for(&newer)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut failed = false;
        for (kind, outcome) in kinds.reload(&newer.source) {
            match outcome {
                Ok(reloaded) => restart_needed.extend(reloaded.restart_needed),
                Err(error) => {
                    failed = true;
                    tracing::error!(
                        kind,
                        "{kind} tools not reloaded; the last good version keeps serving:\n{error}"
                    );
                }
            }
        }
        if !restart_needed.is_empty() {
            tracing::warn!(settings = ?restart_needed, "these config changes take effect only after a restart");
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            complete = !failed,
            "config reloaded"
        );
        current = newer;
    }
}

async fn serve_http(
    server: DataMcp,
    address: SocketAddr,
    settings: &HttpSettings,
) -> Result<ExitCode> {
    let tools = server.registry().list().len();
    let endpoint = HttpEndpoint::bind(server, address, settings).await?;
    let bound = endpoint.local_addr()?;
    tracing::info!(
        tools,
        auth = if settings.tokens.is_empty() {
            "off"
        } else {
            "bearer"
        },
        mode = if settings.stateless {
            "stateless"
        } else {
            "sessions"
        },
        "datamcp {} serving MCP on http://{bound}/mcp (Streamable HTTP) and http://{bound}/sse (HTTP+SSE)",
        env!("CARGO_PKG_VERSION"),
    );
    endpoint.serve(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Tokens are estimated at four bytes each, the usual rate for JSON and English text.
const BYTES_PER_TOKEN: usize = 4;

/// What the listed tools cost a model's context: per tool, the bytes (and estimated tokens) of
/// what it reads (name, description, input schema) and of the output schema; the totals and
/// the size of the whole `tools/list` answer.
pub fn context_cost(registry: &Registry) -> String {
    let mut out = format!(
        "{:<24} {:>12} {:>8} {:>13} {:>8}\n",
        "tool", "model bytes", "tokens", "output bytes", "tokens"
    );
    let (mut model_total, mut output_total) = (0, 0);
    let mut descriptors = Vec::new();
    for entry in registry.list() {
        let spec = entry.tool().spec();
        let model =
            spec.name.len() + spec.description.len() + entry.wire_input_schema().to_string().len();
        let output = entry.wire_output_schema().to_string().len();
        model_total += model;
        output_total += output;
        out.push_str(&format!(
            "{:<24} {:>12} {:>8} {:>13} {:>8}\n",
            spec.name,
            model,
            model / BYTES_PER_TOKEN,
            output,
            output / BYTES_PER_TOKEN
        ));
        descriptors.push(server::tool_descriptor(&entry, server::SchemaForm::Wire));
    }
    let listed = serde_json::to_string(&rmcp::model::ListToolsResult::with_all_items(descriptors))
        .map_or(0, |json| json.len());
    out.push_str(&format!(
        "{:<24} {:>12} {:>8} {:>13} {:>8}\ntools/list answer: {listed} bytes, about {} tokens, on every turn{}\n",
        "total",
        model_total,
        model_total / BYTES_PER_TOKEN,
        output_total,
        output_total / BYTES_PER_TOKEN,
        listed / BYTES_PER_TOKEN,
        if registry.is_discovery() { " (discovery mode)" } else { "" }
    ));
    out
}

/// One JSON document per tool (what `tools/list` advertises) plus the config schema, by file name.
pub fn schema_documents(registry: &Registry) -> Vec<(String, Value)> {
    let mut documents: Vec<(String, Value)> = registry
        .list()
        .iter()
        .map(|entry| {
            let descriptor = server::tool_descriptor(entry, server::SchemaForm::Full);
            (
                format!("{}.json", entry.tool().spec().name),
                serde_json::to_value(descriptor).unwrap_or(Value::Null),
            )
        })
        .collect();
    documents.push((
        "config.schema.json".to_owned(),
        crate::config::config_schema(),
    ));
    // For editors: completion and checks while writing a workflow file.
    documents.push((
        "workflow.schema.json".to_owned(),
        crate::tools::schema::schema_of::<crate::workflow::file::WorkflowFile>(),
    ));
    documents
}

fn write_schemas(dir: &Path, documents: &[(String, Value)]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (file, document) in documents {
        let path = dir.join(file);
        let text = format!("{}\n", serde_json::to_string_pretty(document)?);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`datamcp tools | head`) is not an error.
fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}
