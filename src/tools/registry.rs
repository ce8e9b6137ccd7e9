//! Tools by name: built-in ones and those created at run time, each with its compiled argument
//! validator and its policy runner. The registry knows no concrete tool kind.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use futures::FutureExt;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::context::{Principal, ProgressSink};
use super::health::{HealthCheck, Probe};
use super::metrics::{MetricsSnapshot, ToolMetrics};
use super::policy::{Policy, PolicyOverride, PolicyRunner};
use super::resources::{Providers, ResourceProvider};
use super::result::{ExecutionMeta, ToolError, ToolResult};
use super::schema::{ArgumentValidator, schema_of};
use super::{Annotations, DynTool};

/// Why a tool could not be registered or called.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No tool has this name (or it is disabled).
    #[error("unknown tool '{0}'; call tools/list to see the available tools")]
    UnknownTool(String),
    /// Two tools claim one name.
    #[error("two tools are named '{0}'; tool names must be unique")]
    Duplicate(String),
    /// The name breaks MCP's naming rule.
    #[error("tool name '{0}' is not valid: use 1 to 128 of A-Z a-z 0-9 _ - .")]
    InvalidName(String),
    /// The tool's schemas are unusable.
    #[error("tool '{tool}' has an unusable schema: {reason}")]
    BadSchema {
        /// The tool.
        tool: String,
        /// What is wrong.
        reason: String,
    },
    /// The config names tools that do not exist.
    #[error("the config sets a policy for unknown tool(s) {names:?}; known tools: {known:?}")]
    UnknownPolicyTarget {
        /// Names from the config.
        names: Vec<String>,
        /// Every tool offered by the enabled kinds.
        known: Vec<String>,
    },
}

/// Which tools are served: enable/disable globs and read-only mode.
#[derive(Debug, Clone)]
pub struct ToolFilter {
    /// Globs (`*`, `?`) of names to serve; empty means none.
    pub enable: Vec<String>,
    /// Globs of names never to serve; wins over `enable`.
    pub disable: Vec<String>,
    /// Hide every tool whose annotations do not say read-only.
    pub read_only: bool,
}

impl Default for ToolFilter {
    fn default() -> Self {
        ToolFilter {
            enable: vec!["*".to_owned()],
            disable: Vec::new(),
            read_only: true,
        }
    }
}

impl ToolFilter {
    fn admits(&self, name: &str, annotations: &Annotations) -> bool {
        (annotations.read_only_hint || !self.read_only)
            && self.enable.iter().any(|g| glob_matches(g, name))
            && !self.disable.iter().any(|g| glob_matches(g, name))
    }
}

/// A served tool as clients see it.
pub struct RegisteredTool {
    tool: Arc<dyn DynTool>,
    validator: ArgumentValidator,
    output_schema: Value,
    runner: PolicyRunner,
}

impl RegisteredTool {
    /// The tool itself.
    pub fn tool(&self) -> &Arc<dyn DynTool> {
        &self.tool
    }

    /// The advertised output schema: the tool's own plus the framework's `execution` object.
    pub fn output_schema(&self) -> &Value {
        &self.output_schema
    }

    /// The policy this tool runs under.
    pub fn policy(&self) -> &Policy {
        self.runner.policy()
    }

    /// The tool's counters and latency histogram.
    pub fn metrics(&self) -> &Arc<ToolMetrics> {
        self.runner.metrics()
    }
}

/// The set of served tools, shared by every transport and session.
pub struct Registry {
    filter: ToolFilter,
    default_policy: Policy,
    overrides: BTreeMap<String, PolicyOverride>,
    offered: RwLock<BTreeSet<String>>,
    tools: RwLock<Tools>,
    resources: RwLock<Providers>,
    health: RwLock<Vec<Arc<dyn HealthCheck>>>,
    gauges: RwLock<Vec<Arc<dyn super::gauges::GaugeSource>>>,
}

#[derive(Default)]
struct Tools {
    order: Vec<String>,
    by_name: HashMap<String, Arc<RegisteredTool>>,
}

impl Registry {
    /// An empty registry applying `filter`, `default_policy` and the per-tool `overrides`.
    pub fn new(
        filter: ToolFilter,
        default_policy: Policy,
        overrides: BTreeMap<String, PolicyOverride>,
    ) -> Self {
        Registry {
            filter,
            default_policy,
            overrides,
            offered: RwLock::default(),
            tools: RwLock::default(),
            resources: RwLock::default(),
            health: RwLock::default(),
            gauges: RwLock::default(),
        }
    }

    /// Offers a tool: it is served unless the filter hides it. Returns whether it is served.
    pub fn register(&self, tool: Arc<dyn DynTool>) -> Result<bool, RegistryError> {
        let spec = tool.spec();
        let name = spec.name.clone();
        if !valid_tool_name(&name) {
            return Err(RegistryError::InvalidName(name));
        }
        if !write(&self.offered).insert(name.clone()) {
            return Err(RegistryError::Duplicate(name));
        }
        if !self.filter.admits(&name, &spec.annotations) {
            tracing::debug!(tool = %name, "tool hidden by the tool filter or read-only mode");
            return Ok(false);
        }
        let bad_schema = |reason: String| RegistryError::BadSchema {
            tool: name.clone(),
            reason,
        };
        if tool.input_schema().get("type") != Some(&Value::from("object")) {
            return Err(bad_schema("the input schema must be of type object".into()));
        }
        let validator = ArgumentValidator::compile(tool.input_schema()).map_err(bad_schema)?;
        let output_schema = with_execution_meta(tool.output_schema()).map_err(bad_schema)?;
        let policy = match self.overrides.get(&name) {
            Some(changes) => self.default_policy.with(changes),
            None => self.default_policy.clone(),
        };
        let runner = PolicyRunner::new(policy, spec.annotations.idempotent_hint);
        let entry = Arc::new(RegisteredTool {
            tool,
            validator,
            output_schema,
            runner,
        });
        let mut tools = write(&self.tools);
        tools.order.push(name.clone());
        tools.by_name.insert(name, entry);
        Ok(true)
    }

    /// Adds a provider of resources.
    pub fn register_resources(&self, provider: Arc<dyn ResourceProvider>) {
        write(&self.resources).push(provider);
    }

    /// Every resource provider.
    pub fn resource_providers(&self) -> Providers {
        read(&self.resources).clone()
    }

    /// Adds a readiness check.
    pub fn register_health_check(&self, check: Arc<dyn HealthCheck>) {
        write(&self.health).push(check);
    }

    /// Adds a source of gauges.
    pub fn register_gauges(&self, source: Arc<dyn super::gauges::GaugeSource>) {
        write(&self.gauges).push(source);
    }

    /// Every source of gauges.
    pub fn gauge_sources(&self) -> Vec<Arc<dyn super::gauges::GaugeSource>> {
        read(&self.gauges).clone()
    }

    /// Asks every backing system whether it answers.
    pub async fn probe(&self) -> Vec<Probe> {
        let checks = read(&self.health).clone();
        super::health::probe_all(&checks).await
    }

    /// Fails when the config sets a policy for a tool no kind offered.
    pub fn check_policy_targets(&self) -> Result<(), RegistryError> {
        let offered = read(&self.offered);
        let unknown: Vec<String> = self
            .overrides
            .keys()
            .filter(|name| !offered.contains(*name))
            .cloned()
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::UnknownPolicyTarget {
                names: unknown,
                known: offered.iter().cloned().collect(),
            })
        }
    }

    /// Served tools in registration order.
    pub fn list(&self) -> Vec<Arc<RegisteredTool>> {
        let tools = read(&self.tools);
        tools
            .order
            .iter()
            .filter_map(|name| tools.by_name.get(name).cloned())
            .collect()
    }

    /// A served tool by name.
    pub fn get(&self, name: &str) -> Option<Arc<RegisteredTool>> {
        read(&self.tools).by_name.get(name).cloned()
    }

    /// Calls a tool: validation, then its policy, then the tool. Only an unknown tool is an
    /// `Err`; every other failure is a [`ToolResult`] whose outcome says what went wrong.
    /// `principal` is whom the call runs for (see [`Principal`]).
    pub async fn call(
        &self,
        name: &str,
        args: Option<Map<String, Value>>,
        cancel: &CancellationToken,
        progress: Option<Arc<dyn ProgressSink>>,
        principal: &Principal,
    ) -> Result<ToolResult, RegistryError> {
        let entry = self
            .get(name)
            .ok_or_else(|| RegistryError::UnknownTool(name.to_owned()))?;
        let args = Value::Object(args.unwrap_or_default());
        let started = Instant::now();
        if let Err(problems) = entry.validator.check(&args) {
            let result = failure(ToolError::InvalidArguments(problems), started);
            entry
                .runner
                .metrics()
                .record_call(started.elapsed(), true, false, false);
            return Ok(result);
        }
        let run = entry
            .runner
            .run(entry.tool.as_ref(), args, cancel, progress, principal);
        match AssertUnwindSafe(run).catch_unwind().await {
            Ok(result) => Ok(result),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(tool = name, panic = %what, "tool panicked");
                entry
                    .runner
                    .metrics()
                    .record_call(started.elapsed(), true, false, false);
                Ok(failure(
                    ToolError::Internal(format!("the tool crashed ({what}); please report this")),
                    started,
                ))
            }
        }
    }

    /// Metrics of every served tool, by name.
    pub fn metrics(&self) -> BTreeMap<String, MetricsSnapshot> {
        self.list()
            .iter()
            .map(|entry| {
                (
                    entry.tool.spec().name.clone(),
                    entry.runner.metrics().snapshot(),
                )
            })
            .collect()
    }
}

fn failure(error: ToolError, started: Instant) -> ToolResult {
    ToolResult {
        outcome: Err(error),
        meta: ExecutionMeta {
            execution_id: super::result::new_execution_id(),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
            records: 0,
            cached: false,
            attempts: 0,
            warnings: Vec::new(),
        },
    }
}

/// Adds the framework's `execution` property to a tool's output schema.
fn with_execution_meta(output_schema: &Value) -> Result<Value, String> {
    let mut schema = output_schema.clone();
    let object = schema
        .as_object_mut()
        .filter(|o| o.get("type") == Some(&Value::from("object")))
        .ok_or("the output schema must be of type object")?;
    let properties = object
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or("the output schema's properties must be an object")?;
    if properties.contains_key("execution") {
        return Err("the output property 'execution' is reserved for the framework".into());
    }
    let mut meta = schema_of::<ExecutionMeta>();
    if let Some(meta) = meta.as_object_mut() {
        meta.remove("$schema");
    }
    properties.insert("execution".to_owned(), meta);
    let required = object
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(required) = required.as_array_mut() {
        required.push(Value::from("execution"));
    }
    Ok(schema)
}

fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Matches `name` against a glob with `*` (any run) and `?` (any one character).
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let (glob, name): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    let (mut g, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match glob.get(g) {
            Some('*') => {
                backtrack = Some((g, n));
                g += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                g += 1;
                n += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    g = star + 1;
                    n = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{CallContext, Tool, ToolSpec, typed};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Args {
        /// Whether to crash.
        #[serde(default)]
        panic: bool,
    }

    #[derive(Serialize, JsonSchema)]
    struct Out {
        ok: bool,
    }

    struct Fake {
        name: &'static str,
        annotations: Annotations,
    }

    impl Tool for Fake {
        type Params = Args;
        type Output = Out;

        fn spec(&self) -> ToolSpec {
            ToolSpec {
                name: self.name.to_owned(),
                title: self.name.to_owned(),
                description: "a test tool".to_owned(),
                annotations: self.annotations,
            }
        }

        async fn invoke(&self, _ctx: &CallContext, params: &Args) -> Result<Out, ToolError> {
            assert!(!params.panic, "asked to panic");
            Ok(Out { ok: true })
        }
    }

    const WRITES: Annotations = Annotations {
        read_only_hint: false,
        destructive_hint: true,
        idempotent_hint: false,
        open_world_hint: false,
    };

    fn registry(filter: ToolFilter) -> Registry {
        let registry = Registry::new(filter, Policy::default(), BTreeMap::new());
        for (name, annotations) in [
            ("sql_read", Annotations::READ_ONLY),
            ("sql_write", WRITES),
            ("kafka_read", Annotations::READ_ONLY),
        ] {
            registry
                .register(typed(Fake { name, annotations }))
                .expect("registers");
        }
        registry
    }

    fn served(registry: &Registry) -> Vec<String> {
        registry
            .list()
            .iter()
            .map(|t| t.tool().spec().name.clone())
            .collect()
    }

    #[test]
    fn read_only_mode_hides_tools_that_can_write() {
        assert_eq!(
            served(&registry(ToolFilter::default())),
            ["sql_read", "kafka_read"]
        );
        let writable = ToolFilter {
            read_only: false,
            ..ToolFilter::default()
        };
        assert_eq!(
            served(&registry(writable)),
            ["sql_read", "sql_write", "kafka_read"]
        );
    }

    #[test]
    fn enable_and_disable_globs_choose_the_tools() {
        let filter = ToolFilter {
            enable: vec!["sql_*".to_owned()],
            disable: vec!["*_write".to_owned()],
            read_only: false,
        };
        assert_eq!(served(&registry(filter)), ["sql_read"]);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let registry = registry(ToolFilter::default());
        let again = registry.register(typed(Fake {
            name: "sql_read",
            annotations: Annotations::READ_ONLY,
        }));
        assert!(matches!(again, Err(RegistryError::Duplicate(_))));
    }

    #[test]
    fn policies_for_unknown_tools_are_refused() {
        let mut overrides = BTreeMap::new();
        overrides.insert("sql_reed".to_owned(), PolicyOverride::default());
        let registry = Registry::new(ToolFilter::default(), Policy::default(), overrides);
        let error = registry.check_policy_targets().expect_err("typo");
        assert!(error.to_string().contains("sql_reed"));
    }

    #[tokio::test]
    async fn a_panicking_tool_becomes_an_internal_error_result() {
        let registry = registry(ToolFilter::default());
        let mut args = Map::new();
        args.insert("panic".to_owned(), Value::Bool(true));
        let result = registry
            .call(
                "sql_read",
                Some(args),
                &CancellationToken::new(),
                None,
                &Principal::local(),
            )
            .await
            .expect("known tool");
        let error = result.outcome.expect_err("panicked");
        assert!(matches!(error, ToolError::Internal(_)), "{error}");
        assert!(error.to_string().contains("asked to panic"), "{error}");
        let ok = registry
            .call(
                "sql_read",
                None,
                &CancellationToken::new(),
                None,
                &Principal::local(),
            )
            .await
            .expect("known tool");
        assert!(ok.outcome.is_ok(), "the registry keeps working");
    }

    #[tokio::test]
    async fn unknown_tools_are_an_error_not_a_result() {
        let registry = registry(ToolFilter::default());
        let unknown = registry
            .call(
                "sql_write",
                None,
                &CancellationToken::new(),
                None,
                &Principal::local(),
            )
            .await;
        assert!(
            matches!(unknown, Err(RegistryError::UnknownTool(_))),
            "hidden tools are unknown"
        );
    }

    #[test]
    fn globs_match_like_shells_do() {
        assert!(glob_matches("*", "sql_query"));
        assert!(glob_matches("sql_*", "sql_query"));
        assert!(glob_matches("*_query", "sql_query"));
        assert!(glob_matches("sql_?uery", "sql_query"));
        assert!(glob_matches("s*l*y", "sql_query"));
        assert!(!glob_matches("kafka_*", "sql_query"));
        assert!(!glob_matches("sql", "sql_query"));
    }

    #[test]
    fn tool_names_follow_the_mcp_rule() {
        assert!(valid_tool_name("sql_query"));
        assert!(valid_tool_name("a.b-c_d"));
        assert!(!valid_tool_name(""));
        assert!(!valid_tool_name("has space"));
        assert!(!valid_tool_name(&"x".repeat(129)));
    }
}
