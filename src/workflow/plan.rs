//! Static validation: a workflow file becomes a [`Plan`] only when every problem is gone, and
//! every problem is listed at once. Checked: the tools exist (other kinds' tools, internal ones,
//! workflows of the same batch); step ids and `needs`; expressions compile and name only
//! declared inputs and steps the step waits for; cycles, with their path, through `needs` and
//! through workflows calling workflows; literal `args` against the called tool's input schema;
//! input defaults against their own type; a tool that writes while the server is read-only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::{Map, Value, json};

use super::file::{InputSpec, Mode, OnFailure, TriggerRule, WorkflowFile, parse_duration};
use crate::expr::{Expr, Template};
use crate::tools::Annotations;
use crate::tools::registry::valid_tool_name;
use crate::tools::schema::ArgumentValidator;

/// The default deadline of a run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a caller waits by default before getting a run id to poll.
const DEFAULT_WAIT: Duration = Duration::from_secs(45);
const DEFAULT_MAX_PARALLEL: usize = 8;
const DEFAULT_ITEM_PARALLEL: usize = 4;
const DEFAULT_MAX_ITEMS: usize = 100;
const MAX_ITEMS: usize = 1_000;
const MAX_STEPS: usize = 10_000;
/// Error kinds a step retries when its `retry` does not say.
const DEFAULT_RETRY_ON: &[&str] = &["upstream_transient", "timeout"];
const ERROR_KINDS: &[&str] = &[
    "invalid_arguments",
    "refused",
    "upstream_transient",
    "upstream",
    "timeout",
    "internal",
];

/// One problem in a workflow file: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or `inline` for `workflow_run`).
    pub origin: String,
    /// Where in it: `steps.orders.args.region`, `line 4, column 3`, …
    pub at: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.at, self.message)
        }
    }
}

/// What validation needs to know about a tool the workflow calls.
#[derive(Debug, Clone)]
pub struct ToolInfo {
    /// Its annotations.
    pub annotations: Annotations,
    /// Its input schema.
    pub input_schema: Value,
    /// Whether read-only mode refuses it.
    pub refused_read_only: bool,
}

/// The tools a workflow may call, besides the workflows of its own batch.
pub trait ToolCatalog {
    /// The registered tool `name`, listed or internal.
    fn tool(&self, name: &str) -> Option<ToolInfo>;
}

/// Retries of one step.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts in all.
    pub attempts: u32,
    /// Pause before the first retry.
    pub backoff: Duration,
    /// Error kinds retried.
    pub on: Vec<String>,
}

/// A validated step.
#[derive(Debug)]
pub struct PlannedStep {
    /// Its id.
    pub id: String,
    /// The tool it calls.
    pub tool: String,
    /// Its arguments.
    pub args: Template,
    /// Steps it waits for, by index.
    pub needs: Vec<usize>,
    /// Steps its expressions read, by index (always among its ancestors).
    pub reads: Vec<usize>,
    /// Its `if`.
    pub condition: Option<Expr>,
    /// Its `for_each`.
    pub for_each: Option<Expr>,
    /// Items at once.
    pub max_parallel: usize,
    /// Items at most.
    pub max_items: usize,
    /// Its retries.
    pub retry: Retry,
    /// Deadline of each attempt.
    pub timeout: Option<Duration>,
    /// What its failure does.
    pub on_failure: OnFailure,
    /// Its fallback output.
    pub fallback: Option<Value>,
    /// When it runs.
    pub trigger: TriggerRule,
    /// Its quality gates.
    pub asserts: Vec<(Expr, String)>,
    /// In a pipeline, the step whose output is `previous`.
    pub previous: Option<usize>,
}

/// A validated workflow, ready to run any number of times.
#[derive(Debug)]
pub struct Plan {
    /// Tool name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Inputs by name.
    pub inputs: BTreeMap<String, InputSpec>,
    /// The tool's input schema.
    pub input_schema: Value,
    /// Steps in file order.
    pub steps: Vec<PlannedStep>,
    /// Step indexes in an order where every step comes after its needs.
    pub order: Vec<usize>,
    /// The answer's template.
    pub output: Template,
    /// Names of the answer's fields, when the template is a map.
    pub output_fields: Vec<String>,
    /// Deadline of a run.
    pub timeout: Duration,
    /// Steps at once.
    pub max_parallel: usize,
    /// How long a caller waits before getting a run id.
    pub wait: Duration,
    /// Derived from the steps' tools.
    pub annotations: Annotations,
    /// Workflows of the same batch this one calls (for cycle checks across files).
    pub calls: Vec<String>,
}

impl Plan {
    /// Steps grouped by depth: level 0 needs nothing, level n needs something at n-1.
    pub fn levels(&self) -> Vec<Vec<usize>> {
        let mut depth = vec![0usize; self.steps.len()];
        for &index in &self.order {
            depth[index] = self.steps[index]
                .needs
                .iter()
                .map(|&need| depth[need] + 1)
                .max()
                .unwrap_or(0);
        }
        let deepest = depth.iter().copied().max().map_or(0, |d| d + 1);
        let mut levels = vec![Vec::new(); deepest];
        for &index in &self.order {
            levels[depth[index]].push(index);
        }
        levels
    }
}

/// A batch of workflow files, validated together so they may call one another.
pub fn plan_batch(
    files: Vec<(String, WorkflowFile)>,
    catalog: &dyn ToolCatalog,
    read_only: bool,
) -> (Vec<Plan>, Vec<Problem>) {
    let mut problems = Vec::new();
    let batch: HashMap<String, &WorkflowFile> =
        files.iter().map(|(_, f)| (f.name.clone(), f)).collect();
    let mut seen_names = HashSet::new();
    for (origin, file) in &files {
        if !seen_names.insert(file.name.clone()) {
            problems.push(problem(
                origin,
                "name",
                format!("another workflow file is also named '{}'", file.name),
            ));
        }
    }
    let mut plans = Vec::new();
    for (origin, file) in &files {
        match plan_one(origin, file, catalog, &batch, read_only) {
            Ok(plan) => plans.push((origin.clone(), plan)),
            Err(mut found) => problems.append(&mut found),
        }
    }
    // Workflows calling workflows: a cycle would recurse until the deadline.
    let mut graph = DiGraph::<&str, ()>::new();
    let nodes: HashMap<&str, NodeIndex> = plans
        .iter()
        .map(|(_, plan)| (plan.name.as_str(), graph.add_node(plan.name.as_str())))
        .collect();
    for (_, plan) in &plans {
        for called in &plan.calls {
            if let (Some(&from), Some(&to)) =
                (nodes.get(plan.name.as_str()), nodes.get(called.as_str()))
            {
                graph.add_edge(from, to, ());
            }
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        let path: Vec<&str> = cycle.iter().map(|&n| graph[n]).collect();
        let first = path[0];
        let origin = plans
            .iter()
            .find(|(_, p)| p.name == first)
            .map(|(o, _)| o.clone())
            .unwrap_or_default();
        problems.push(problem(
            &origin,
            "steps",
            format!(
                "workflows call each other in a cycle: {} -> {first}",
                path.join(" -> ")
            ),
        ));
        return (Vec::new(), problems);
    }
    // Annotations of a workflow depend on those of the workflows it calls.
    let mut annotations: HashMap<String, Annotations> = HashMap::new();
    if let Ok(order) = petgraph::algo::toposort(&graph, None) {
        for node in order.into_iter().rev() {
            let name = graph[node];
            if let Some((_, plan)) = plans.iter().find(|(_, p)| p.name == name) {
                let derived = derive_annotations(plan, catalog, &annotations);
                annotations.insert(name.to_owned(), derived);
            }
        }
    }
    let plans = plans
        .into_iter()
        .map(|(_, mut plan)| {
            if let Some(derived) = annotations.get(&plan.name) {
                plan.annotations = *derived;
            }
            plan
        })
        .collect();
    (plans, problems)
}

fn problem(origin: &str, at: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        origin: origin.to_owned(),
        at: at.into(),
        message: message.into(),
    }
}

fn valid_step_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && id.len() <= 64
}

/// The input schema a workflow's `inputs` declare.
pub fn input_schema(inputs: &BTreeMap<String, InputSpec>) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, spec) in inputs {
        let mut schema = json!({"type": spec.kind.json_type(), "description": spec.description});
        if let Some(items) = spec.items {
            schema["items"] = json!({"type": items.json_type()});
        }
        if let Some(allowed) = &spec.allowed {
            schema["enum"] = Value::Array(allowed.clone());
        }
        if let Some(default) = &spec.default {
            schema["default"] = default.clone();
        }
        if spec.required.unwrap_or(spec.default.is_none()) {
            required.push(Value::from(name.clone()));
        }
        properties.insert(name.clone(), schema);
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn plan_one(
    origin: &str,
    file: &WorkflowFile,
    catalog: &dyn ToolCatalog,
    batch: &HashMap<String, &WorkflowFile>,
    read_only: bool,
) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut report = |at: String, message: String| problems.push(problem(origin, at, message));

    if !valid_tool_name(&file.name) {
        report(
            "name".into(),
            format!(
                "'{}' is not a valid tool name: use 1 to 128 of A-Z a-z 0-9 _ - .",
                file.name
            ),
        );
    }
    if file.steps.is_empty() {
        report("steps".into(), "a workflow needs at least one step".into());
    }
    if file.steps.len() > MAX_STEPS {
        report("steps".into(), format!("at most {MAX_STEPS} steps"));
    }
    // Inputs: each default must fit its own declaration.
    for (name, spec) in &file.inputs {
        if let Some(default) = &spec.default {
            let one = input_schema(&BTreeMap::from([(name.clone(), spec.clone())]));
            let schema = &one["properties"][name];
            if let Err(message) = ArgumentValidator::compile(schema).and_then(|v| v.check(default))
            {
                report(
                    format!("inputs.{name}.default"),
                    format!("the default does not fit the input's own type: {message}"),
                );
            }
        }
    }
    let duration = |at: String,
                    text: &Option<String>,
                    default: Duration,
                    report: &mut dyn FnMut(String, String)| {
        match text.as_deref().map(parse_duration) {
            None => default,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                report(at, "must be longer than zero".into());
                default
            }
            Some(Err(message)) => {
                report(at, message);
                default
            }
        }
    };
    let timeout = duration(
        "timeout".into(),
        &file.timeout,
        DEFAULT_TIMEOUT,
        &mut report,
    );
    let wait = duration("wait".into(), &file.wait, DEFAULT_WAIT, &mut report);
    let max_parallel = file.max_parallel.unwrap_or(DEFAULT_MAX_PARALLEL);
    if max_parallel == 0 {
        report("max_parallel".into(), "must be at least 1".into());
    }

    // Step ids.
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (index, step) in file.steps.iter().enumerate() {
        if !valid_step_id(&step.id) {
            report(
                format!("steps[{index}].id"),
                format!(
                    "'{}' is not a valid step id: start with a letter or _, then letters, digits or _",
                    step.id
                ),
            );
        }
        if index_of.insert(step.id.as_str(), index).is_some() {
            report(
                format!("steps.{}", step.id),
                "two steps have this id".into(),
            );
        }
    }

    // Needs, from `needs` or the mode.
    let mut needs: Vec<Vec<usize>> = Vec::with_capacity(file.steps.len());
    for (index, step) in file.steps.iter().enumerate() {
        let mut own = Vec::new();
        if let Some(mode) = file.mode {
            if !step.needs.is_empty() {
                report(
                    format!("steps.{}.needs", step.id),
                    format!(
                        "mode {} implies needs; remove `needs` or the mode",
                        mode_name(mode)
                    ),
                );
            }
            if mode != Mode::Parallel && index > 0 {
                own.push(index - 1);
            }
        }
        for need in &step.needs {
            match index_of.get(need.as_str()) {
                Some(&other) if other == index => report(
                    format!("steps.{}.needs", step.id),
                    "a step cannot need itself".into(),
                ),
                Some(&other) => own.push(other),
                None => report(
                    format!("steps.{}.needs", step.id),
                    format!("unknown step '{need}'; steps: {}", ids(file)),
                ),
            }
        }
        needs.push(own);
    }

    // Cycles through needs.
    let mut graph = DiGraph::<usize, ()>::new();
    let nodes: Vec<NodeIndex> = (0..file.steps.len()).map(|i| graph.add_node(i)).collect();
    for (index, own) in needs.iter().enumerate() {
        for &need in own {
            graph.add_edge(nodes[need], nodes[index], ());
        }
    }
    let order: Vec<usize> = match petgraph::algo::toposort(&graph, None) {
        Ok(order) => order.into_iter().map(|n| graph[n]).collect(),
        Err(_) => {
            let path = find_cycle(&graph)
                .map(|cycle| {
                    let names: Vec<&str> = cycle
                        .iter()
                        .map(|&n| file.steps[graph[n]].id.as_str())
                        .collect();
                    format!("{} -> {}", names.join(" -> "), names[0])
                })
                .unwrap_or_default();
            report(
                "steps".into(),
                format!("the steps' needs form a cycle: {path}"),
            );
            return Err(problems);
        }
    };
    // Ancestors, to check that a step reads only steps it waits for.
    let mut ancestors: Vec<HashSet<usize>> = vec![HashSet::new(); file.steps.len()];
    for &index in &order {
        let mut all = HashSet::new();
        for &need in &needs[index] {
            all.insert(need);
            all.extend(ancestors[need].iter().copied());
        }
        ancestors[index] = all;
    }

    let mut steps = Vec::with_capacity(file.steps.len());
    let mut calls = Vec::new();
    for (index, step) in file.steps.iter().enumerate() {
        let at = |field: &str| format!("steps.{}.{field}", step.id);
        let in_for_each = step.for_each.is_some();
        let previous = (file.mode == Some(Mode::Pipeline) && index > 0).then(|| index - 1);
        let mut reads = HashSet::new();
        let mut check_refs = |field: &str,
                              refs: Vec<crate::expr::Reference>,
                              allow_output: bool,
                              report: &mut dyn FnMut(String, String)| {
            // `item` and `index` exist only while an item's args are rendered.
            let item_exists = in_for_each && field == "args";
            for reference in refs {
                match reference.root.as_str() {
                    "inputs" => {
                        if let Some(name) = &reference.field
                            && !file.inputs.contains_key(name)
                        {
                            report(
                                at(field),
                                format!(
                                    "unknown input '{name}'; inputs: {}",
                                    file.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            );
                        }
                    }
                    "steps" => match reference.field.as_deref() {
                        None => report(at(field), "name a step: steps.<id>.output".into()),
                        Some(id) => match index_of.get(id) {
                            None => report(
                                at(field),
                                format!("unknown step '{id}'; steps: {}", ids(file)),
                            ),
                            Some(&other) if !ancestors[index].contains(&other) => report(
                                at(field),
                                format!(
                                    "reads step '{id}' but does not wait for it; add it to needs"
                                ),
                            ),
                            Some(&other) => {
                                reads.insert(other);
                            }
                        },
                    },
                    "item" | "index" if item_exists => {}
                    "item" | "index" => report(
                        at(field),
                        "item and index exist only in the args of a for_each step".into(),
                    ),
                    "previous" if previous.is_some() => {}
                    "previous" => report(
                        at(field),
                        "previous exists only in a pipeline, after the first step".into(),
                    ),
                    "output" if allow_output => {}
                    other => report(
                        at(field),
                        format!(
                            "unknown name '{other}'; use inputs, steps, item, index, previous{}",
                            if allow_output { " or output" } else { "" }
                        ),
                    ),
                }
            }
        };
        let compile_expr = |field: &str,
                            text: &Option<String>,
                            report: &mut dyn FnMut(String, String)|
         -> Option<Expr> {
            let text = text.as_deref()?;
            match Expr::compile(text) {
                Ok(expr) => Some(expr),
                Err(error) => {
                    report(at(field), error.to_string());
                    None
                }
            }
        };
        let condition = compile_expr("if", &step.condition, &mut report);
        if let Some(expr) = &condition {
            // Judged once, before any item.
            check_refs("if", expr.references(), false, &mut report);
        }
        let for_each = compile_expr("for_each", &step.for_each, &mut report);
        if let Some(expr) = &for_each {
            check_refs("for_each", expr.references(), false, &mut report);
        }
        let args = match Template::compile_at(&Value::Object(step.args.clone()), "args") {
            Ok(template) => {
                check_refs("args", template.references(), false, &mut report);
                Some(template)
            }
            Err(error) => {
                report(at("args"), error.to_string());
                None
            }
        };
        let mut asserts = Vec::new();
        for (n, gate) in step.asserts.iter().enumerate() {
            match Expr::compile(&gate.that) {
                Ok(expr) => {
                    check_refs(
                        &format!("assert[{n}]"),
                        expr.references(),
                        true,
                        &mut report,
                    );
                    asserts.push((expr, gate.message.clone()));
                }
                Err(error) => report(at(&format!("assert[{n}]")), error.to_string()),
            }
        }

        // The tool, and literal arguments against its schema.
        let info = match batch.get(&step.tool) {
            Some(other) => {
                calls.push(step.tool.clone());
                Some(ToolInfo {
                    annotations: Annotations::READ_ONLY,
                    input_schema: input_schema(&other.inputs),
                    refused_read_only: false,
                })
            }
            None => catalog.tool(&step.tool),
        };
        match info {
            None => report(
                at("tool"),
                format!(
                    "unknown tool '{}'; run `datamcp tools` to see the tools",
                    step.tool
                ),
            ),
            Some(info) => {
                if info.refused_read_only && read_only {
                    report(
                        at("tool"),
                        format!(
                            "'{}' can write and this server is read-only (read_only = true)",
                            step.tool
                        ),
                    );
                }
                if let Some(args) = &args {
                    for message in check_literal_args(&info.input_schema, &step.args, args) {
                        report(at("args"), message);
                    }
                }
            }
        }
        if step.fallback.is_some() && step.on_failure != Some(OnFailure::Continue) {
            report(
                at("fallback"),
                "a fallback is used only with on_failure: continue".into(),
            );
        }
        let max_items = step.max_items.unwrap_or(DEFAULT_MAX_ITEMS);
        if max_items > MAX_ITEMS {
            report(at("max_items"), format!("at most {MAX_ITEMS}"));
        }
        if step.max_parallel == Some(0) {
            report(at("max_parallel"), "must be at least 1".into());
        }
        let retry = match &step.retry {
            None => Retry {
                attempts: 1,
                backoff: Duration::from_millis(100),
                on: DEFAULT_RETRY_ON.iter().map(|s| (*s).to_owned()).collect(),
            },
            Some(retry) => {
                if !(1..=10).contains(&retry.attempts) {
                    report(at("retry.attempts"), "must be between 1 and 10".into());
                }
                let on: Vec<String> = retry
                    .on
                    .clone()
                    .unwrap_or_else(|| DEFAULT_RETRY_ON.iter().map(|s| (*s).to_owned()).collect());
                for kind in &on {
                    if !ERROR_KINDS.contains(&kind.as_str()) {
                        report(
                            at("retry.on"),
                            format!(
                                "unknown error kind '{kind}'; kinds: {}",
                                ERROR_KINDS.join(", ")
                            ),
                        );
                    }
                }
                Retry {
                    attempts: retry.attempts.clamp(1, 10),
                    backoff: duration(
                        at("retry.backoff"),
                        &retry.backoff,
                        Duration::from_millis(100),
                        &mut report,
                    ),
                    on,
                }
            }
        };
        let step_timeout = step
            .timeout
            .as_ref()
            .map(|_| duration(at("timeout"), &step.timeout, timeout, &mut report));
        let trigger = step
            .trigger
            .unwrap_or(if file.mode == Some(Mode::Conditional) {
                TriggerRule::NoneFailed
            } else {
                TriggerRule::AllSuccess
            });
        let mut reads: Vec<usize> = reads.into_iter().collect();
        reads.sort_unstable();
        // A step whose args did not compile is already a problem; the plan is not built.
        let Some(args) = args else { continue };
        steps.push(PlannedStep {
            id: step.id.clone(),
            tool: step.tool.clone(),
            args,
            needs: needs[index].clone(),
            reads,
            condition,
            for_each,
            max_parallel: step.max_parallel.unwrap_or(DEFAULT_ITEM_PARALLEL).max(1),
            max_items: max_items.min(MAX_ITEMS),
            retry,
            timeout: step_timeout,
            on_failure: step.on_failure.unwrap_or(OnFailure::Stop),
            fallback: step.fallback.clone(),
            trigger,
            asserts,
            previous,
        });
    }

    // The answer.
    let output_value = file.output.clone().unwrap_or_else(|| {
        Value::Object(
            file.steps
                .iter()
                .map(|s| {
                    (
                        s.id.clone(),
                        Value::from(format!("${{{{ steps.{}.output }}}}", s.id)),
                    )
                })
                .collect(),
        )
    });
    let output = match Template::compile(&output_value) {
        Ok(template) => {
            for reference in template.references() {
                match (reference.root.as_str(), reference.field.as_deref()) {
                    ("inputs", Some(name)) if !file.inputs.contains_key(name) => {
                        report("output".into(), format!("unknown input '{name}'"));
                    }
                    ("inputs", _) => {}
                    ("steps", Some(id)) if index_of.contains_key(id) => {}
                    ("steps", Some(id)) => report(
                        "output".into(),
                        format!("unknown step '{id}'; steps: {}", ids(file)),
                    ),
                    (other, _) => report(
                        "output".into(),
                        format!("unknown name '{other}'; the output reads inputs and steps"),
                    ),
                }
            }
            Some(template)
        }
        Err(error) => {
            report("output".into(), error.to_string());
            None
        }
    };
    let output_fields = output_value
        .as_object()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default();

    let Some(output) = output.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };
    calls.sort();
    calls.dedup();
    let plan = Plan {
        name: file.name.clone(),
        title: file
            .title
            .clone()
            .unwrap_or_else(|| file.name.replace('_', " ")),
        description: file.description.clone(),
        input_schema: input_schema(&file.inputs),
        inputs: file.inputs.clone(),
        steps,
        order,
        output,
        output_fields,
        timeout,
        max_parallel: max_parallel.max(1),
        wait,
        annotations: Annotations::READ_ONLY,
        calls,
    };
    let annotations = derive_annotations(&plan, catalog, &HashMap::new());
    Ok(Plan {
        annotations,
        ..plan
    })
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Sequential => "sequential",
        Mode::Parallel => "parallel",
        Mode::Pipeline => "pipeline",
        Mode::Conditional => "conditional",
    }
}

fn ids(file: &WorkflowFile) -> String {
    file.steps
        .iter()
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Read-only only if every step is, destructive if any is, idempotent only if all are.
fn derive_annotations(
    plan: &Plan,
    catalog: &dyn ToolCatalog,
    batch: &HashMap<String, Annotations>,
) -> Annotations {
    let mut derived = Annotations {
        read_only_hint: true,
        destructive_hint: false,
        idempotent_hint: true,
        open_world_hint: false,
    };
    for step in &plan.steps {
        let annotations = batch
            .get(&step.tool)
            .copied()
            .or_else(|| catalog.tool(&step.tool).map(|info| info.annotations))
            .unwrap_or(Annotations::READ_ONLY);
        derived.read_only_hint &= annotations.read_only_hint;
        derived.destructive_hint |= annotations.destructive_hint;
        derived.idempotent_hint &= annotations.idempotent_hint;
        derived.open_world_hint |= annotations.open_world_hint;
    }
    derived
}

/// Problems of the literal arguments of a step against the called tool's input schema:
/// unknown names, literal values that do not fit, required arguments not given at all.
/// Templated values are checked when the step runs.
fn check_literal_args(
    schema: &Value,
    written: &Map<String, Value>,
    template: &Template,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(literal) = template.literal() {
        if let Err(message) = ArgumentValidator::compile(schema).and_then(|v| v.check(literal)) {
            problems.push(format!(
                "the arguments do not fit the tool's input schema: {message}"
            ));
        }
        return problems;
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (key, value) in written {
        let property = properties.and_then(|p| p.get(key));
        match property {
            None if closed => problems.push(format!(
                "the tool takes no argument '{key}'; it takes: {}",
                properties
                    .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            )),
            None => {}
            Some(property) if !contains_template(value) => {
                // The property's schema may refer to the root's definitions.
                let mut alone = property.clone();
                if let (Some(object), Some(defs)) = (alone.as_object_mut(), schema.get("$defs")) {
                    object.insert("$defs".to_owned(), defs.clone());
                }
                if let Err(message) =
                    ArgumentValidator::compile(&alone).and_then(|v| v.check(value))
                {
                    problems.push(format!("argument '{key}' does not fit: {message}"));
                }
            }
            Some(_) => {}
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !written.contains_key(name) {
                problems.push(format!("the tool needs argument '{name}'"));
            }
        }
    }
    problems
}

fn contains_template(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains("${{"),
        Value::Array(items) => items.iter().any(contains_template),
        Value::Object(map) => map.values().any(contains_template),
        _ => false,
    }
}

/// A cycle of `graph` as a node path, if it has one.
fn find_cycle<N>(graph: &DiGraph<N, ()>) -> Option<Vec<NodeIndex>> {
    for component in petgraph::algo::tarjan_scc(graph) {
        let looped = component.len() > 1
            || component
                .first()
                .is_some_and(|&n| graph.contains_edge(n, n));
        if !looped {
            continue;
        }
        // Walk inside the component until a node repeats.
        let members: HashSet<NodeIndex> = component.iter().copied().collect();
        let mut path = vec![component[0]];
        let mut seen = HashSet::from([component[0]]);
        let mut current = component[0];
        loop {
            let next = graph.neighbors(current).find(|n| members.contains(n))?;
            if seen.contains(&next) {
                let start = path.iter().position(|&n| n == next).unwrap_or(0);
                return Some(path[start..].to_vec());
            }
            seen.insert(next);
            path.push(next);
            current = next;
        }
    }
    None
}

/// Parses one YAML workflow file; the error names the line and column.
pub fn parse_yaml(origin: &str, text: &str) -> Result<WorkflowFile, Problem> {
    serde_saphyr::from_str(text).map_err(|error| problem(origin, "", error.to_string()))
}

/// Parses one workflow given as JSON (`workflow_run`).
pub fn parse_json(value: Value) -> Result<WorkflowFile, Problem> {
    serde_json::from_value(value).map_err(|error| problem("inline", "", error.to_string()))
}
