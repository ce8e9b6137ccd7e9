//! A workflow as a picture: Mermaid (renders in GitHub and most Markdown viewers) or Graphviz.

use super::plan::Plan;

/// The plan as a Mermaid flowchart: one node per step (id and tool), an edge per need.
pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    for step in &plan.steps {
        let mut label = format!("{}<br/>{}", step.id, step.tool);
        if step.for_each.is_some() {
            label.push_str("<br/>for each");
        }
        if step.condition.is_some() {
            label.push_str("<br/>if");
        }
        out.push_str(&format!(
            "    {}[\"{}\"]\n",
            step.id,
            label.replace('"', "'")
        ));
    }
    for step in &plan.steps {
        for &need in &step.needs {
            out.push_str(&format!("    {} --> {}\n", plan.steps[need].id, step.id));
        }
    }
    out
}

/// The plan in Graphviz's DOT language.
pub fn dot(plan: &Plan) -> String {
    let mut out = format!("digraph \"{}\" {{\n    rankdir=TB;\n", plan.name);
    for step in &plan.steps {
        out.push_str(&format!(
            "    \"{}\" [shape=box, label=\"{}\\n{}\"];\n",
            step.id, step.id, step.tool
        ));
    }
    for step in &plan.steps {
        for &need in &step.needs {
            out.push_str(&format!(
                "    \"{}\" -> \"{}\";\n",
                plan.steps[need].id, step.id
            ));
        }
    }
    out.push_str("}\n");
    out
}
