//! Tables: what a tool answers when its answer is rows, whatever kind it is (SQL today, stream
//! windows and evaluation tables next), so every kind caps, renders and hands off large results
//! the same way.
//!
//! A result is [`Column`]s and rows of JSON values. It is read under [`ReadLimits`], counted by
//! a [`RowBudget`] while it streams in, so a cap stops the read rather than trimming a buffered
//! result; the budget also says whether rows or bytes stopped it, which the caller's warning
//! must name. The rows are rendered as text in a [`Format`], or, for results too large to
//! inline, written to an [`output`] file that [`OutputFiles`] serves back as a resource.
//!
//! Invariant: nothing here knows a tool kind or the config; kinds depend on this module, never
//! the other way round.

mod budget;
mod column;
mod format;
pub mod output;
mod parquet;

pub use budget::{ReadLimits, RowBudget, TooLarge};
pub use column::Column;
pub use format::{Format, render};
pub use output::{OutputFile, OutputFiles};
