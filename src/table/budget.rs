//! How much of a result a call may read: rows and approximate JSON bytes, counted while the
//! rows stream in, so reading stops at the cap instead of buffering a huge result first.

use serde_json::Value;

/// How much of a result to read.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Rows at most.
    pub rows: usize,
    /// Approximate bytes of JSON at most.
    pub bytes: usize,
}

impl ReadLimits {
    /// Only a row cap (for datamcp's own catalog queries).
    pub fn rows(rows: usize) -> Self {
        ReadLimits {
            rows,
            bytes: usize::MAX,
        }
    }
}

/// A value or row larger than the whole byte budget of the call, refused before it was
/// converted (or, where the database checks it, before it was sent).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "a value or row{} is larger than the byte budget of {budget} bytes (max_bytes); select fewer or shorter values, e.g. substr(column, 1, 1000), or raise max_bytes",
    .bytes.map(|b| format!(" of {b} bytes")).unwrap_or_default()
)]
pub struct TooLarge {
    /// Its size, when known.
    pub bytes: Option<usize>,
    /// The call's byte budget.
    pub budget: usize,
}

/// Counts rows and their approximate JSON size against [`ReadLimits`] while a result streams in.
#[derive(Debug)]
pub struct RowBudget {
    limits: ReadLimits,
    rows: usize,
    bytes: usize,
    /// Whether the byte cap (rather than the row cap) ended the read.
    pub byte_limited: bool,
}

impl RowBudget {
    /// A fresh budget.
    pub fn new(limits: ReadLimits) -> Self {
        RowBudget {
            limits,
            rows: 0,
            bytes: 0,
            byte_limited: false,
        }
    }

    /// Whether another row may still be read at all.
    pub fn has_room(&self) -> bool {
        self.rows < self.limits.rows && !self.byte_limited
    }

    /// Takes one row a server engine received: its size as the driver received it is checked
    /// before `convert` turns it into JSON, then the JSON is counted. `None` when the read stops
    /// here and the row is left out; a row larger than the whole budget is an error.
    pub fn take<E: From<TooLarge>>(
        &mut self,
        raw_bytes: usize,
        convert: impl FnOnce() -> Result<Vec<Value>, E>,
    ) -> Result<Option<Vec<Value>>, E> {
        if !self.has_room() || !self.fits_raw(raw_bytes)? {
            return Ok(None);
        }
        let record = convert()?;
        Ok(self.admit(&record).then_some(record))
    }

    /// Checks a row's size as the driver received it, before it is converted to JSON: a row larger
    /// than the whole budget is an error, one larger than what is left ends the read.
    fn fits_raw(&mut self, raw_bytes: usize) -> Result<bool, TooLarge> {
        if raw_bytes > self.limits.bytes {
            return Err(TooLarge {
                bytes: Some(raw_bytes),
                budget: self.limits.bytes,
            });
        }
        if raw_bytes > self.limits.bytes - self.bytes {
            self.byte_limited = true;
            return Ok(false);
        }
        Ok(true)
    }

    /// Counts `row`; `false` when it does not fit, and it must be left out.
    pub fn admit(&mut self, row: &[Value]) -> bool {
        let size: usize = row.iter().map(json_size).sum::<usize>() + 2;
        if self.bytes + size > self.limits.bytes {
            self.byte_limited = true;
            return false;
        }
        self.rows += 1;
        self.bytes += size;
        true
    }
}

/// About how many bytes `value` takes as compact JSON.
fn json_size(value: &Value) -> usize {
    match value {
        Value::Null => 5,
        Value::Bool(_) => 6,
        Value::Number(_) => 12,
        Value::String(s) => s.len() + 3,
        Value::Array(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}
