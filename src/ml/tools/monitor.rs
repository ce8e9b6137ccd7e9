//! `ml_monitor`: whether a model's inputs drift, comparing a reference window with a current
//! one, each a SQL query.
//!
//! Per feature: PSI and the two-sample Kolmogorov–Smirnov test for numeric columns, PSI and a
//! chi-square test for categorical ones, and the change in the share of missing values. The
//! warehouse counts: one aggregate pass per window for the shapes, then one histogram per
//! feature and window — each distinct value with its count, or, above `exact_limit` distinct
//! values, equal-width bins (the result states the bound on the error).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tidy;
use crate::ml::data::{
    Dialect, Input, Rows, Warehouse, count, derived, label, literal, number, numeric_type,
};
use crate::ml::stats::drift::{
    self, CategoryShare, ChiSquare, Ks, MissingDrift, PsiBin, chi_square, ks_binned_bound,
    ks_two_sample, quantile_edges,
};
use crate::tools::kind::KindHost;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

const DEFAULT_EXACT_LIMIT: u32 = 20_000;
const MAX_FEATURES: usize = 100;
const MAX_CATEGORIES: u32 = 1_000;

/// Arguments of `ml_monitor`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorParams {
    /// SELECT of the reference window.
    pub reference_sql: String,
    /// SELECT of the current window (same columns).
    pub current_sql: String,
    #[serde(default)]
    pub reference_params: Vec<Value>,
    #[serde(default)]
    pub current_params: Vec<Value>,
    /// Default: all but exclude.
    pub features: Option<Vec<String>>,
    /// E.g. ids, timestamps.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Numeric columns to treat as categories.
    #[serde(default)]
    pub categorical: Vec<String>,
    /// PSI quantile bins (default 10).
    #[schemars(range(min = 2, max = 100))]
    pub bins: Option<u32>,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Distinct values read exactly (default 20000), then binned.
    #[schemars(range(min = 100, max = 50_000))]
    pub exact_limit: Option<u32>,
    pub warehouse: Option<String>,
}

/// A feature drifts when any statistic passes its threshold.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Default 0.2.
    #[serde(default = "default_psi")]
    pub psi: f64,
    /// KS statistic, default 0.1.
    #[serde(default = "default_ks")]
    pub ks: f64,
    /// Missing-share change, default 0.05.
    #[serde(default = "default_missing")]
    pub missing: f64,
    /// KS/chi-square p-value (default unused).
    pub p_value: Option<f64>,
}

fn default_psi() -> f64 {
    0.2
}
fn default_ks() -> f64 {
    0.1
}
fn default_missing() -> f64 {
    0.05
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            psi: default_psi(),
            ks: default_ks(),
            missing: default_missing(),
            p_value: None,
        }
    }
}

/// How a feature was compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// Numbers: PSI over reference quantiles, KS.
    Numeric,
    /// Categories: PSI over categories, chi-square.
    Categorical,
}

/// One feature's drift.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FeatureDrift {
    /// The column.
    pub name: String,
    /// How it was compared.
    pub kind: FeatureKind,
    /// Whether any statistic passed its threshold.
    pub drifting: bool,
    /// Which thresholds it passed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Population stability index.
    pub psi: Option<f64>,
    /// Numeric: the PSI bins (reference quantiles) with each window's share.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bins: Vec<PsiBin>,
    /// Categorical: each category's share in each window.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategoryShare>,
    /// Kolmogorov–Smirnov (numeric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<Ks>,
    /// Chi-square test of the category counts (categorical).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi_square: Option<ChiSquare>,
    /// Missing values in each window.
    pub missing: Option<MissingDrift>,
    /// Whether the statistics are exact; when not, `approximation` says by how much.
    pub exact: bool,
    /// How the approximate statistics may differ from the exact ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximation: Option<String>,
}

/// Result of `ml_monitor`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MonitorOutput {
    /// The warehouse that ran the queries.
    pub warehouse: String,
    /// Rows in the reference window.
    pub reference_rows: u64,
    /// Rows in the current window.
    pub current_rows: u64,
    /// `drift` when any feature drifts, else `stable`.
    pub verdict: String,
    /// The drifting features, most drifted (by PSI) first.
    pub drifting: Vec<String>,
    /// Every feature compared.
    pub features: Vec<FeatureDrift>,
    /// The thresholds applied.
    pub thresholds: Thresholds,
}

/// `ml_monitor`.
pub struct Monitor {
    host: KindHost,
}

impl Monitor {
    /// The tool, reading through `host`'s SQL tools.
    pub fn new(host: KindHost) -> Self {
        Monitor { host }
    }
}

impl Tool for Monitor {
    type Params = MonitorParams;
    type Output = MonitorOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ml_monitor".to_owned(),
            title: "Check feature drift".to_owned(),
            description: "Drift between a reference and a current window (two SQL queries), per feature: PSI, Kolmogorov–Smirnov (numeric), chi-square (categorical), missing-value change; a verdict naming the drifting features.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &MonitorParams,
    ) -> Result<MonitorOutput, ToolError> {
        let w = Warehouse::open(&self.host, ctx, params.warehouse.as_deref()).await?;
        let windows = [
            derived(&params.reference_sql, &params.reference_params)?,
            derived(&params.current_sql, &params.current_params)?,
        ];
        let probes = [
            w.rows(&format!("SELECT * FROM {}", windows[0]), &windows[0], 1)
                .await?,
            w.rows(&format!("SELECT * FROM {}", windows[1]), &windows[1], 1)
                .await?,
        ];
        let features =
            resolve_kinds(&w, &windows[0], features(params, &probes, w.dialect())?).await?;
        let limit = params
            .exact_limit
            .unwrap_or(DEFAULT_EXACT_LIMIT)
            .clamp(100, 50_000);
        let bins = params.bins.unwrap_or(10).clamp(2, 100) as usize;

        // One pass per window: rows, and per feature non-missing count, distinct count and range.
        let mut shapes = Vec::new();
        for window in &windows {
            let mut select = vec!["COUNT(*)".to_owned()];
            for (name, kind) in &features {
                let f = w.quote(name);
                select.push(format!("COUNT({f})"));
                select.push(format!("COUNT(DISTINCT {f})"));
                if *kind == FeatureKind::Numeric {
                    let ff = w.float(&f);
                    select.push(format!("MIN({ff})"));
                    select.push(format!("MAX({ff})"));
                } else {
                    select.push("NULL".into());
                    select.push("NULL".into());
                }
            }
            shapes.push(
                w.one_row(
                    &format!("SELECT {} FROM {window}", select.join(", ")),
                    window,
                )
                .await?,
            );
        }
        let rows = [count(&shapes[0][0]), count(&shapes[1][0])];
        let mut report = Vec::new();
        for (index, (name, kind)) in features.iter().enumerate() {
            ctx.progress(
                index as f64,
                Some(features.len() as f64),
                format!("comparing {name}"),
            );
            let shape = [
                Shape::read(&shapes[0], index),
                Shape::read(&shapes[1], index),
            ];
            let mut feature = FeatureDrift {
                name: name.clone(),
                kind: *kind,
                drifting: false,
                reasons: Vec::new(),
                psi: None,
                bins: Vec::new(),
                categories: Vec::new(),
                ks: None,
                chi_square: None,
                missing: drift::missing_drift(
                    (rows[0] - shape[0].present.min(rows[0]), rows[0]),
                    (rows[1] - shape[1].present.min(rows[1]), rows[1]),
                ),
                exact: true,
                approximation: None,
            };
            match kind {
                FeatureKind::Numeric => {
                    compare_numeric(&w, &windows, &shape, limit, bins, &mut feature).await?;
                }
                FeatureKind::Categorical => {
                    compare_categorical(&w, &windows, &mut feature).await?;
                }
            }
            judge(&mut feature, &params.thresholds);
            report.push(feature);
        }
        let mut drifting: Vec<&FeatureDrift> = report.iter().filter(|f| f.drifting).collect();
        drifting.sort_by(|a, b| {
            let psi = |f: &FeatureDrift| f.psi.unwrap_or(0.0);
            psi(b).total_cmp(&psi(a))
        });
        let drifting: Vec<String> = drifting.into_iter().map(|f| f.name.clone()).collect();
        Ok(MonitorOutput {
            warehouse: w.name().to_owned(),
            reference_rows: rows[0],
            current_rows: rows[1],
            verdict: if drifting.is_empty() {
                "stable"
            } else {
                "drift"
            }
            .to_owned(),
            drifting,
            features: report,
            thresholds: params.thresholds.clone(),
        })
    }

    fn render_text(&self, _params: &MonitorParams, output: &MonitorOutput) -> String {
        let mut text = format!(
            "{}: {} rows reference, {} current.",
            if output.drifting.is_empty() {
                "No drift".to_owned()
            } else {
                format!("DRIFT in {}", output.drifting.join(", "))
            },
            output.reference_rows,
            output.current_rows
        );
        text.push_str("\n| feature | kind | PSI | KS (p) | chi² (p) | missing ref→cur | drift |\n| --- | --- | --- | --- | --- | --- | --- |");
        for f in &output.features {
            let test = |s: Option<(f64, Option<f64>)>| {
                s.map(|(v, p)| match p {
                    Some(p) => format!("{} ({p:.2e})", tidy(v)),
                    None => tidy(v).to_string(),
                })
                .unwrap_or_default()
            };
            text.push_str(&format!(
                "\n| {} | {} | {} | {} | {} | {:.3}→{:.3} | {} |",
                f.name,
                match f.kind {
                    FeatureKind::Numeric => "numeric",
                    FeatureKind::Categorical => "categorical",
                },
                f.psi.map(|p| tidy(p).to_string()).unwrap_or_default(),
                test(f.ks.as_ref().map(|k| (k.statistic, k.p_value))),
                test(
                    f.chi_square
                        .as_ref()
                        .map(|c| (c.statistic, Some(c.p_value)))
                ),
                f.missing.map_or(0.0, |m| m.reference_rate),
                f.missing.map_or(0.0, |m| m.current_rate),
                if f.drifting {
                    f.reasons.join("; ")
                } else {
                    String::new()
                }
            ));
        }
        let approximate: Vec<&str> = output
            .features
            .iter()
            .filter(|f| !f.exact)
            .map(|f| f.name.as_str())
            .collect();
        if !approximate.is_empty() {
            text.push_str(&format!(
                "\nApproximate (binned): {}; see each feature's approximation.",
                approximate.join(", ")
            ));
        }
        text
    }
}

/// One feature's figures in one window, from the shape pass: rows with a value, distinct
/// values, and the range (numeric features).
struct Shape {
    present: u64,
    distinct: u64,
    min: Option<f64>,
    max: Option<f64>,
}

impl Shape {
    /// The `index`th feature's four columns of a shape row (after its leading `COUNT(*)`).
    fn read(row: &[Value], index: usize) -> Shape {
        let at = |offset: usize| row.get(1 + index * 4 + offset).unwrap_or(&Value::Null);
        Shape {
            present: count(at(0)),
            distinct: count(at(1)),
            min: number(at(2)),
            max: number(at(3)),
        }
    }
}

/// PSI over reference quantiles and KS, from each window's histogram: exact (distinct values)
/// up to `limit` distinct values, else equal-width bins over the common range.
async fn compare_numeric(
    w: &Warehouse<'_>,
    windows: &[Input; 2],
    shape: &[Shape; 2],
    limit: u32,
    bins: usize,
    feature: &mut FeatureDrift,
) -> Result<(), ToolError> {
    let name = &feature.name;
    let distinct = shape[0].distinct.max(shape[1].distinct);
    let lo = shape.iter().filter_map(|s| s.min).reduce(f64::min);
    let hi = shape.iter().filter_map(|s| s.max).reduce(f64::max);
    if [lo, hi].iter().flatten().any(|v| !v.is_finite())
        || (distinct > u64::from(limit) && (lo.is_none() || hi.is_none()))
    {
        return Err(ToolError::InvalidArguments(format!(
            "'{name}' holds values that are not finite numbers; filter them out or list the column in `exclude`"
        )));
    }
    let binned = match (lo, hi) {
        // hi/limit - lo/limit cannot overflow where hi - lo can.
        (Some(lo), Some(hi)) if distinct > u64::from(limit) && hi > lo => {
            Some((lo, 1.0 / (hi / f64::from(limit) - lo / f64::from(limit))))
        }
        _ => None,
    };
    let f = w.quote(name);
    let mut histograms = Vec::new();
    for window in windows {
        histograms.push(numeric_histogram(w, window, &f, binned, limit).await?);
    }
    let edges = quantile_edges(&histograms[0], bins);
    if let Some(psi) = drift::psi(&histograms[0], &histograms[1], &edges) {
        feature.psi = Some(psi.value);
        feature.bins = psi.bins;
    }
    feature.ks = ks_two_sample(&histograms[0], &histograms[1]);
    if let Some((_, scale)) = binned {
        let bound = ks_binned_bound(&histograms[0], &histograms[1]).unwrap_or(0.0);
        feature.exact = false;
        feature.approximation = Some(format!(
            "{distinct} distinct values, more than exact_limit {limit}: values were binned into bins {:.3e} wide; the KS statistic may be up to {bound:.2e} higher, the p-value is computed from the binned statistic, and the PSI edges are quantiles of the bins",
            1.0 / scale
        ));
    }
    Ok(())
}

/// PSI and chi-square over the categories of both windows, unless there are too many to read.
async fn compare_categorical(
    w: &Warehouse<'_>,
    windows: &[Input; 2],
    feature: &mut FeatureDrift,
) -> Result<(), ToolError> {
    let f = w.quote(&feature.name);
    let mut counts = Vec::new();
    for window in windows {
        let rows = w
            .rows(
                &format!("SELECT {f}, COUNT(*) FROM {window} WHERE {f} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC"),
                window,
                MAX_CATEGORIES,
            )
            .await?;
        if rows.truncated {
            // Each window's rarer categories would fall into a different rest, and comparing
            // those would report drift that is not there.
            feature.exact = false;
            feature.approximation = Some(format!(
                "more than {MAX_CATEGORIES} categories: not compared (an id or free text is not a feature; list it in `exclude`)"
            ));
            return Ok(());
        }
        counts.push(categories(&rows));
    }
    if let Some(psi) = drift::psi_categorical(&counts[0], &counts[1]) {
        feature.psi = Some(psi.value);
        feature.categories = psi.categories;
    }
    feature.chi_square = chi_square(&counts[0], &counts[1]);
    Ok(())
}

/// The features to compare, with how: the requested columns (or all but the excluded), each
/// numeric when the warehouse types it as a number and it is not listed as categorical; `None`
/// on SQLite, whose column types are only its first row's.
fn features(
    params: &MonitorParams,
    probes: &[Rows; 2],
    dialect: Dialect,
) -> Result<Vec<(String, Option<FeatureKind>)>, ToolError> {
    let [reference, current] = probes;
    let names: Vec<String> = match &params.features {
        Some(features) => features.clone(),
        None => reference
            .columns
            .iter()
            .filter(|c| !params.exclude.contains(c))
            .cloned()
            .collect(),
    };
    if names.is_empty() {
        return Err(ToolError::InvalidArguments(
            "no features to compare: the reference query returns no column that is not excluded"
                .into(),
        ));
    }
    if names.len() > MAX_FEATURES {
        return Err(ToolError::InvalidArguments(format!(
            "{} features; compare at most {MAX_FEATURES} per call (name them in `features`)",
            names.len()
        )));
    }
    let mut features = Vec::new();
    for name in names {
        let Some(at) = reference.columns.iter().position(|c| *c == name) else {
            return Err(ToolError::InvalidArguments(format!(
                "the reference query has no column '{name}'; it has: {}",
                reference.columns.join(", ")
            )));
        };
        if !current.columns.contains(&name) {
            return Err(ToolError::InvalidArguments(format!(
                "the current query has no column '{name}'; both windows need the same columns (it has: {})",
                current.columns.join(", ")
            )));
        }
        let kind = if params.categorical.contains(&name) {
            Some(FeatureKind::Categorical)
        } else if dialect == Dialect::Sqlite {
            // SQLite types values, not columns (an expression's type is its first row's):
            // decided from all of them below.
            None
        } else if numeric_type(&reference.types[at]) {
            Some(FeatureKind::Numeric)
        } else {
            Some(FeatureKind::Categorical)
        };
        features.push((name, kind));
    }
    Ok(features)
}

/// Decides the kind of SQLite's columns: numeric when every present value in the reference
/// window is an integer or a real.
async fn resolve_kinds(
    w: &Warehouse<'_>,
    reference: &Input,
    features: Vec<(String, Option<FeatureKind>)>,
) -> Result<Vec<(String, FeatureKind)>, ToolError> {
    let untyped: Vec<&String> = features
        .iter()
        .filter(|(_, kind)| kind.is_none())
        .map(|(name, _)| name)
        .collect();
    let mut numeric = Vec::new();
    if !untyped.is_empty() {
        let select: Vec<String> = untyped
            .iter()
            .map(|name| {
                let f = w.quote(name);
                format!(
                    "SUM(CASE WHEN typeof({f}) IN ('integer', 'real') THEN 1 ELSE 0 END), COUNT({f})"
                )
            })
            .collect();
        let row = w
            .one_row(
                &format!("SELECT {} FROM {reference}", select.join(", ")),
                reference,
            )
            .await?;
        for (index, name) in untyped.iter().enumerate() {
            let (numbers, present) = (
                count(row.get(2 * index).unwrap_or(&Value::Null)),
                count(row.get(2 * index + 1).unwrap_or(&Value::Null)),
            );
            if present > 0 && numbers == present {
                numeric.push((*name).clone());
            }
        }
    }
    Ok(features
        .into_iter()
        .map(|(name, kind)| {
            let kind = kind.unwrap_or(if numeric.contains(&name) {
                FeatureKind::Numeric
            } else {
                FeatureKind::Categorical
            });
            (name, kind)
        })
        .collect())
}

/// A numeric column's histogram in one window: each distinct value with its count, or the
/// centre of each equal-width bin when `binned` gives (low, bins per unit).
async fn numeric_histogram(
    w: &Warehouse<'_>,
    window: &Input,
    f: &str,
    binned: Option<(f64, f64)>,
    limit: u32,
) -> Result<Vec<(f64, u64)>, ToolError> {
    let ff = w.float(f);
    let sql = match binned {
        Some((lo, scale)) => format!(
            "SELECT ROUND(({ff} - {}) * {}), COUNT(*) FROM {window} WHERE {f} IS NOT NULL GROUP BY 1",
            literal(lo),
            literal(scale)
        ),
        None => format!("SELECT {ff}, COUNT(*) FROM {window} WHERE {f} IS NOT NULL GROUP BY 1"),
    };
    let rows = w.rows(&sql, window, limit + 2).await?;
    if rows.truncated {
        return Err(ToolError::Internal(format!(
            "a histogram had more than {} groups, which the distinct count ruled out",
            limit + 2
        )));
    }
    Ok(rows
        .rows
        .iter()
        .filter_map(|row| {
            let key = row.first().and_then(number)?;
            let value = match binned {
                Some((lo, scale)) => lo + key / scale,
                None => key,
            };
            Some((value, count(row.get(1)?)))
        })
        .collect())
}

/// Category counts from a `GROUP BY` read.
fn categories(rows: &Rows) -> Vec<(String, u64)> {
    rows.rows
        .iter()
        .filter_map(|row| Some((label(row.first()?)?, count(row.get(1)?))))
        .collect()
}

fn judge(feature: &mut FeatureDrift, thresholds: &Thresholds) {
    if let Some(psi) = feature.psi
        && psi >= thresholds.psi
    {
        feature
            .reasons
            .push(format!("PSI {} ≥ {}", tidy(psi), thresholds.psi));
    }
    if let Some(ks) = &feature.ks {
        if ks.statistic >= thresholds.ks {
            feature
                .reasons
                .push(format!("KS {} ≥ {}", tidy(ks.statistic), thresholds.ks));
        }
        if let (Some(p), Some(value)) = (thresholds.p_value, ks.p_value)
            && value < p
        {
            feature
                .reasons
                .push(format!("KS p-value {value:.2e} < {p}"));
        }
    }
    if let (Some(chi), Some(p)) = (&feature.chi_square, thresholds.p_value)
        && chi.p_value < p
    {
        feature
            .reasons
            .push(format!("chi-square p-value {:.2e} < {p}", chi.p_value));
    }
    if let Some(missing) = feature.missing
        && missing.difference.abs() >= thresholds.missing
    {
        feature.reasons.push(format!(
            "missing {:.3} → {:.3}",
            missing.reference_rate, missing.current_rate
        ));
    }
    feature.drifting = !feature.reasons.is_empty();
}
