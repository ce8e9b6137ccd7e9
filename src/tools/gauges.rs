//! Gauges a tool kind reports about the systems behind its tools (SQL: each warehouse's
//! connection pool), read at every scrape of `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;

/// One reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// Metric family, e.g. `datamcp_pool_connections_in_use`.
    pub name: &'static str,
    /// What the family measures, for `# HELP`.
    pub help: &'static str,
    /// Label pairs, e.g. `("warehouse", "pg")`.
    pub labels: Vec<(&'static str, String)>,
    /// The value now.
    pub value: f64,
}

/// A kind's source of gauges.
pub trait GaugeSource: Send + Sync {
    /// The readings now.
    fn gauges(&self) -> Vec<Gauge>;
}

/// Every source's readings in the Prometheus text format, one `# HELP`/`# TYPE` per family
/// (families in the order first seen, however the sources interleave them).
pub fn exposition(sources: &[Arc<dyn GaugeSource>]) -> String {
    let readings: Vec<Gauge> = sources.iter().flat_map(|s| s.gauges()).collect();
    let mut families: Vec<(&'static str, &'static str)> = Vec::new();
    for gauge in &readings {
        if !families.iter().any(|(name, _)| *name == gauge.name) {
            families.push((gauge.name, gauge.help));
        }
    }
    let mut out = String::new();
    for (name, help) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for gauge in readings.iter().filter(|g| g.name == name) {
            let labels: Vec<String> = gauge
                .labels
                .iter()
                .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {}", labels.join(","), gauge.value);
        }
    }
    out
}

/// A label value with `\`, `"` and newlines escaped, as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two;

    impl GaugeSource for Two {
        fn gauges(&self) -> Vec<Gauge> {
            ["a", "b\"c"]
                .into_iter()
                .flat_map(|w| {
                    [("x_open", 2.0), ("x_idle", 1.0)].map(|(name, value)| Gauge {
                        name,
                        help: "help",
                        labels: vec![("warehouse", w.to_owned())],
                        value,
                    })
                })
                .collect()
        }
    }

    #[test]
    fn families_are_grouped_under_one_header_and_labels_escaped() {
        let text = exposition(&[Arc::new(Two)]);
        assert_eq!(text.matches("# TYPE x_open gauge").count(), 1, "{text}");
        assert!(text.contains("x_open{warehouse=\"a\"} 2\n"), "{text}");
        assert!(text.contains("x_idle{warehouse=\"b\\\"c\"} 1\n"), "{text}");
        let open = text.find("x_open{warehouse=\"b").unwrap_or(usize::MAX);
        assert!(open < text.find("# HELP x_idle").unwrap_or(0), "{text}");
    }
}
