//! Windowed aggregation by event time: tumbling or hopping windows, grouped by a field, with
//! count/sum/avg/min/max and percentiles of a numeric field, and late messages counted.
//!
//! Event time comes from a field of the value or the message timestamp. Each partition keeps
//! its own high mark of event time; the watermark is the lowest of them minus the allowed
//! lateness (partitions are read interleaved, so one partition's progress must not make
//! another's messages late). A window closes when the watermark passes its end; a message whose
//! windows have all closed is late: counted, not added. Memory is bounded: at most
//! `MAX_WINDOWS` windows, `MAX_CELLS` (window, group) cells, and `RESERVOIR` values per cell for
//! percentiles (exact below that, a uniform sample above, and then flagged approximate).

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::time::{format_millis, parse_rfc3339};

/// Windows kept at most.
pub const MAX_WINDOWS: usize = 2_000;
/// (window, group) cells kept at most; further groups fold into `(other)`.
pub const MAX_CELLS: usize = 100_000;
/// Values kept per cell for percentiles.
pub const RESERVOIR: usize = 10_000;
/// The group that collects groups past the cell limit.
pub const OTHER: &str = "(other)";
/// Values kept for percentiles over all cells (32 MiB of f64).
pub const MAX_VALUES: usize = 4_000_000;
/// Event times beyond ±this many ms (about the year 33,000) count as having no time, so no
/// window arithmetic can overflow.
const MAX_TIME_MS: i64 = 1_000_000_000_000_000;
/// Longest window: a thousand years.
pub const MAX_WINDOW_MS: u64 = 31_557_600_000_000;

/// A statistic of the numeric field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    /// Messages (always given).
    Count,
    /// Sum.
    Sum,
    /// Mean.
    Avg,
    /// Smallest.
    Min,
    /// Largest.
    Max,
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
}

impl Stat {
    fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Sum => "sum",
            Stat::Avg => "avg",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
        }
    }

    fn quantile(self) -> Option<f64> {
        match self {
            Stat::P50 => Some(0.5),
            Stat::P90 => Some(0.9),
            Stat::P95 => Some(0.95),
            Stat::P99 => Some(0.99),
            _ => None,
        }
    }
}

/// Where a value comes from in a message.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldRef {
    /// The message key.
    Key,
    /// The partition.
    Partition,
    /// A dotted path into the value (`amount`, `customer.country`).
    Value(Vec<String>),
}

impl FieldRef {
    /// `key`, `partition`, or a dotted path into the value (`value.` prefix optional).
    pub fn parse(text: &str) -> Result<FieldRef, String> {
        let text = text.trim();
        match text {
            "key" => return Ok(FieldRef::Key),
            "partition" => return Ok(FieldRef::Partition),
            "" => return Err("an empty field name".into()),
            _ => {}
        }
        let path = text.strip_prefix("value.").unwrap_or(text);
        let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
        if parts.iter().any(String::is_empty) {
            return Err(format!(
                "'{text}' is not a field path: write names joined by dots, e.g. customer.country"
            ));
        }
        Ok(FieldRef::Value(parts))
    }

    /// The field in a message's value.
    pub fn in_value<'v>(path: &[String], value: &'v Value) -> Option<&'v Value> {
        path.iter().try_fold(value, |v, name| match v {
            Value::Object(map) => map.get(name),
            Value::Array(items) => name.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }
}

/// The shape of the windows.
#[derive(Debug, Clone, Copy)]
pub struct WindowSpec {
    /// Length, ms.
    pub size_ms: i64,
    /// Step between window starts, ms (= size for tumbling windows).
    pub hop_ms: i64,
    /// How far behind the watermark a message may arrive and still count.
    pub lateness_ms: i64,
}

impl WindowSpec {
    /// Starts of the windows holding time `t`, earliest first.
    /// (Times are within ±`MAX_TIME_MS` and sizes within `MAX_WINDOW_MS`, so nothing here
    /// overflows.)
    fn starts(&self, t: i64) -> impl Iterator<Item = i64> + use<> {
        let (size, hop) = (self.size_ms, self.hop_ms);
        let last = t.div_euclid(hop) * hop;
        let first = (t - size).div_euclid(hop) * hop + hop;
        (0..)
            .map(move |k| first + k * hop)
            .take_while(move |&s| s <= last)
    }
}

#[derive(Debug, Default)]
struct Cell {
    count: u64,
    /// Messages whose field was missing or not a number.
    missing: u64,
    late: u64,
    sum: f64,
    min: f64,
    max: f64,
    numbers: u64,
    values: Vec<f64>,
}

#[derive(Debug, Default)]
struct Window {
    groups: HashMap<String, Cell>,
    closed: bool,
}

/// The aggregation in progress.
pub struct Windows {
    spec: WindowSpec,
    stats: Vec<Stat>,
    keep_values: bool,
    windows: BTreeMap<i64, Window>,
    cells: usize,
    /// Per partition still delivering: the newest event time it gave (`i64::MIN` before its
    /// first message, which holds the watermark back until it speaks).
    partition_marks: BTreeMap<i32, i64>,
    finished_partitions: Vec<i32>,
    watermark: i64,
    late: u64,
    dropped: u64,
    no_time: u64,
    approximate: bool,
    values_kept: usize,
    rng: fastrand::Rng,
}

/// One row of the result: a window and a group.
pub type Row = Map<String, Value>;

impl Windows {
    /// An empty aggregation.
    pub fn new(spec: WindowSpec, stats: Vec<Stat>) -> Self {
        let keep_values = stats.iter().any(|s| s.quantile().is_some());
        Windows {
            spec,
            stats,
            keep_values,
            windows: BTreeMap::new(),
            cells: 0,
            partition_marks: BTreeMap::new(),
            finished_partitions: Vec::new(),
            watermark: i64::MIN,
            late: 0,
            dropped: 0,
            no_time: 0,
            approximate: false,
            values_kept: 0,
            rng: fastrand::Rng::with_seed(7),
        }
    }

    /// The event time of a message: `field` of the value (RFC 3339 text, or a number of ms), or
    /// the message timestamp.
    pub fn event_time(
        path: Option<&[String]>,
        value: &Value,
        timestamp_ms: Option<i64>,
    ) -> Option<i64> {
        match path {
            None => timestamp_ms,
            Some(path) => match FieldRef::in_value(path, value)? {
                Value::String(text) => parse_rfc3339(text),
                Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
                _ => None,
            },
        }
        .filter(|t| (-MAX_TIME_MS..=MAX_TIME_MS).contains(t))
    }

    /// Adds a message of `partition` at event time `time` (none: unknown) in `group` with the
    /// numeric field `number`. Returns the starts of windows this message's arrival closed.
    pub fn add(
        &mut self,
        partition: i32,
        time: Option<i64>,
        group: &str,
        number: Option<f64>,
    ) -> Vec<i64> {
        let Some(time) = time else {
            self.no_time += 1;
            return Vec::new();
        };
        let mut counted = false;
        let mut capped = false;
        for start in self.spec.starts(time) {
            if !self.windows.contains_key(&start) {
                // A window the watermark already passed is never opened: the message is late
                // for it.
                if start + self.spec.size_ms <= self.watermark {
                    continue;
                }
                if self.windows.len() >= MAX_WINDOWS {
                    capped = true;
                    continue;
                }
                self.windows.insert(start, Window::default());
            }
            let Some(window) = self.windows.get_mut(&start) else {
                continue;
            };
            let cell = if let Some(cell) = window.groups.get_mut(group) {
                cell
            } else {
                let name = if self.cells >= MAX_CELLS {
                    OTHER
                } else {
                    group
                };
                if !window.groups.contains_key(name) {
                    self.cells += 1;
                }
                window.groups.entry(name.to_owned()).or_default()
            };
            if window.closed {
                cell.late += 1;
                continue;
            }
            counted = true;
            cell.count += 1;
            match number {
                Some(x) if x.is_finite() => {
                    if cell.numbers == 0 {
                        cell.min = x;
                        cell.max = x;
                    } else {
                        cell.min = cell.min.min(x);
                        cell.max = cell.max.max(x);
                    }
                    cell.numbers += 1;
                    cell.sum += x;
                    if self.keep_values {
                        if cell.values.len() < RESERVOIR && self.values_kept < MAX_VALUES {
                            cell.values.push(x);
                            self.values_kept += 1;
                        } else if cell.values.is_empty() {
                            // No room left for this cell's values: its percentiles stay null.
                            self.approximate = true;
                        } else {
                            self.approximate = true;
                            let slot = self.rng.u64(0..cell.numbers) as usize;
                            if slot < cell.values.len() {
                                cell.values[slot] = x;
                            }
                        }
                    }
                }
                _ => cell.missing += 1,
            }
        }
        if !counted {
            if capped {
                self.dropped += 1;
            } else {
                self.late += 1;
            }
        }
        if let Some(mark) = self.partition_marks.get_mut(&partition) {
            *mark = (*mark).max(time);
        } else if !self.finished_partitions.contains(&partition) {
            // A source that did not announce its partitions (a live stream): it is one.
            self.partition_marks.insert(partition, time);
        }
        self.advance()
    }

    /// A partition that will deliver: it holds the watermark until its first message.
    pub fn expect_partition(&mut self, partition: i32) {
        self.partition_marks.entry(partition).or_insert(i64::MIN);
    }

    /// A partition that will deliver no more: it no longer holds the watermark back.
    pub fn partition_done(&mut self, partition: i32) -> Vec<i64> {
        self.partition_marks.remove(&partition);
        self.finished_partitions.push(partition);
        self.advance()
    }

    /// Moves the watermark and closes the windows it passed; returns their starts.
    fn advance(&mut self) -> Vec<i64> {
        let watermark = match self.partition_marks.values().min() {
            Some(&low) => low.saturating_sub(self.spec.lateness_ms),
            // Every partition has ended: no message can come, every window is final.
            None if !self.finished_partitions.is_empty() => i64::MAX,
            None => return Vec::new(),
        };
        if watermark <= self.watermark {
            return Vec::new();
        }
        self.watermark = watermark;
        let mut closed = Vec::new();
        for (&start, window) in self.windows.range_mut(..) {
            if start.saturating_add(self.spec.size_ms) > watermark {
                break;
            }
            if !window.closed {
                window.closed = true;
                closed.push(start);
            }
        }
        closed
    }

    /// The rows of the window starting at `start`, by group.
    pub fn rows_of(&mut self, start: i64, group_by: bool) -> Vec<Row> {
        let size = self.spec.size_ms;
        let stats = self.stats.clone();
        let Some(window) = self.windows.get_mut(&start) else {
            return Vec::new();
        };
        let mut groups: Vec<(&String, &mut Cell)> = window.groups.iter_mut().collect();
        groups.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        groups
            .into_iter()
            .map(|(group, cell)| {
                let mut row = Map::new();
                row.insert("window_start".into(), format_millis(start).into());
                row.insert("window_end".into(), format_millis(start + size).into());
                if group_by {
                    row.insert("group".into(), group_value(group));
                }
                row.insert("count".into(), cell.count.into());
                for stat in &stats {
                    let value = stat_value(*stat, cell);
                    if *stat != Stat::Count {
                        row.insert(stat.name().into(), value);
                    }
                }
                if cell.missing > 0 && stats.iter().any(|s| *s != Stat::Count) {
                    row.insert("missing".into(), cell.missing.into());
                }
                if cell.late > 0 {
                    row.insert("late".into(), cell.late.into());
                }
                row
            })
            .collect()
    }

    /// Closes every window (the read ended) and returns all rows, windows in time order.
    pub fn finish(&mut self, group_by: bool) -> Vec<Row> {
        let starts: Vec<i64> = self.windows.keys().copied().collect();
        let mut rows = Vec::new();
        for start in starts {
            if let Some(window) = self.windows.get_mut(&start) {
                window.closed = true;
            }
            rows.extend(self.rows_of(start, group_by));
        }
        rows
    }

    /// Messages that came after their windows closed.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Messages without a usable event time.
    pub fn without_time(&self) -> u64 {
        self.no_time
    }

    /// Messages left out because the window or cell limit was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether percentiles came from a sample.
    pub fn approximate(&self) -> bool {
        self.approximate
    }

    /// Windows open or closed so far.
    pub fn window_count(&self) -> usize {
        self.windows.len()
    }
}

/// Group names are kept as text; numbers and booleans are shown as such again.
fn group_value(group: &str) -> Value {
    match serde_json::from_str::<Value>(group) {
        Ok(value @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => value,
        _ => Value::String(group.to_owned()),
    }
}

fn stat_value(stat: Stat, cell: &mut Cell) -> Value {
    // Twelve significant digits: sums of decimal amounts come out as 228662.03, not
    // 228662.03000000003, which a model would read out as it is.
    let number = |x: f64| {
        let tidy = format!("{x:.11e}").parse::<f64>().unwrap_or(x);
        serde_json::Number::from_f64(tidy).map_or(Value::Null, Value::Number)
    };
    if cell.numbers == 0 && stat != Stat::Count {
        return Value::Null;
    }
    match stat {
        Stat::Count => cell.count.into(),
        Stat::Sum => number(cell.sum),
        Stat::Avg => number(cell.sum / cell.numbers as f64),
        Stat::Min => number(cell.min),
        Stat::Max => number(cell.max),
        quantile => {
            let q = quantile.quantile().unwrap_or(0.5);
            if !cell.values.is_sorted() {
                cell.values.sort_by(f64::total_cmp);
            }
            number(percentile(&cell.values, q))
        }
    }
}

/// The `q` quantile of sorted `values` by linear interpolation between closest ranks (what
/// NumPy's default and most SQL `percentile_cont` give).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = q * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

/// The text a group key is kept as.
pub fn group_key(value: Option<&Value>) -> String {
    match value {
        None => "null".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tumbling(size_ms: i64, lateness_ms: i64) -> Windows {
        Windows::new(
            WindowSpec {
                size_ms,
                hop_ms: size_ms,
                lateness_ms,
            },
            vec![
                Stat::Count,
                Stat::Sum,
                Stat::Avg,
                Stat::Min,
                Stat::Max,
                Stat::P50,
                Stat::P90,
            ],
        )
    }

    #[test]
    fn messages_at_known_times_fall_in_their_tumbling_windows() {
        let mut w = tumbling(1_000, 0);
        for (t, x) in [
            (0, 1.0),
            (500, 3.0),
            (999, 2.0),
            (1_000, 10.0),
            (2_500, 4.0),
        ] {
            w.add(0, Some(t), "all", Some(x));
        }
        let rows = w.finish(false);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["count"], 3);
        assert_eq!(rows[0]["sum"], 6.0);
        assert_eq!(rows[0]["avg"], 2.0);
        assert_eq!(
            (rows[0]["min"].clone(), rows[0]["max"].clone()),
            (1.0.into(), 3.0.into())
        );
        assert_eq!(rows[0]["p50"], 2.0);
        assert_eq!(rows[1]["window_start"], "1970-01-01T00:00:01.000Z");
        assert_eq!(rows[2]["count"], 1);
    }

    #[test]
    fn hopping_windows_count_a_message_in_each_window_that_holds_it() {
        let mut w = Windows::new(
            WindowSpec {
                size_ms: 1_000,
                hop_ms: 500,
                lateness_ms: 0,
            },
            vec![Stat::Count],
        );
        w.add(0, Some(700), "g", None);
        let rows = w.finish(false);
        let starts: Vec<&Value> = rows.iter().map(|r| &r["window_start"]).collect();
        assert_eq!(
            starts,
            ["1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00.500Z"]
        );
    }

    #[test]
    fn a_message_after_its_window_closed_is_late_counted_and_not_added() {
        let mut w = tumbling(1_000, 0);
        w.add(0, Some(100), "g", Some(1.0));
        let closed = w.add(0, Some(1_500), "g", Some(1.0));
        assert_eq!(closed, vec![0], "the watermark passed the first window");
        w.add(0, Some(200), "g", Some(100.0));
        assert_eq!(w.late(), 1);
        let rows = w.finish(false);
        assert_eq!(
            (rows[0]["count"].clone(), rows[0]["late"].clone()),
            (1.into(), 1.into())
        );
        assert_eq!(rows[0]["sum"], 1.0);

        // With lateness allowed, the same message counts.
        let mut w = tumbling(1_000, 1_000);
        w.add(0, Some(100), "g", Some(1.0));
        w.add(0, Some(1_500), "g", Some(1.0));
        w.add(0, Some(200), "g", Some(100.0));
        assert_eq!(w.late(), 0);
    }

    #[test]
    fn the_slowest_partition_holds_the_watermark() {
        let mut w = tumbling(1_000, 0);
        w.expect_partition(0);
        w.expect_partition(1);
        assert!(
            w.add(0, Some(5_000), "g", None).is_empty(),
            "partition 1 has said nothing yet"
        );
        w.add(1, Some(100), "g", None);
        assert_eq!(w.late(), 0, "partition 1 has not passed its own time");
        assert_eq!(
            w.partition_done(1),
            vec![0],
            "partition 0 alone moves the watermark"
        );
    }

    #[test]
    fn groups_are_rows_sorted_by_count_and_missing_numbers_are_counted() {
        let mut w = tumbling(1_000, 0);
        w.add(0, Some(1), "EUR", Some(1.0));
        w.add(0, Some(2), "USD", Some(2.0));
        w.add(0, Some(3), "USD", None);
        let rows = w.finish(true);
        assert_eq!(rows[0]["group"], "USD");
        assert_eq!(rows[0]["missing"], 1);
        assert_eq!(rows[1]["group"], "EUR");
    }

    #[test]
    fn extreme_times_have_no_window_and_cannot_overflow() {
        let mut w = Windows::new(
            WindowSpec {
                size_ms: MAX_WINDOW_MS as i64,
                hop_ms: 1,
                lateness_ms: i64::MAX,
            },
            vec![Stat::Count],
        );
        let value = serde_json::json!({"ts": 1e19, "neg": i64::MIN});
        let path = |p: &str| vec![p.to_owned()];
        assert_eq!(Windows::event_time(Some(&path("ts")), &value, None), None);
        assert_eq!(Windows::event_time(Some(&path("neg")), &value, None), None);
        assert_eq!(Windows::event_time(None, &value, Some(i64::MAX)), None);
        w.add(0, None, "g", None);
        assert_eq!(w.without_time(), 1);
    }

    #[test]
    fn sums_of_decimal_amounts_read_as_decimals() {
        let mut w = tumbling(1_000, 0);
        for x in [0.1, 0.2, 228_661.73] {
            w.add(0, Some(1), "g", Some(x));
        }
        let rows = w.finish(false);
        assert_eq!(rows[0]["sum"], 228_662.03);
        assert_eq!(rows[0]["avg"], 76_220.676_666_7);
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&sorted, 0.5), 2.5);
        assert!((percentile(&sorted, 0.9) - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&[5.0], 0.99), 5.0);
    }

    #[test]
    fn field_paths_reach_into_objects_and_arrays() {
        let value = serde_json::json!({"customer": {"country": "FR"}, "items": [{"sku": "A"}]});
        let FieldRef::Value(path) = FieldRef::parse("value.customer.country").expect("valid")
        else {
            panic!()
        };
        assert_eq!(FieldRef::in_value(&path, &value), Some(&Value::from("FR")));
        let FieldRef::Value(path) = FieldRef::parse("items.0.sku").expect("valid") else {
            panic!()
        };
        assert_eq!(FieldRef::in_value(&path, &value), Some(&Value::from("A")));
        assert_eq!(FieldRef::parse("key").expect("valid"), FieldRef::Key);
        assert!(FieldRef::parse("a..b").is_err());
    }
}
