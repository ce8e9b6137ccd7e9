//! datamcp: an MCP server that gives LLM agents safe, fast, typed access to data systems.
//!
//! A call enters through a transport in [`server`], which knows the MCP wire types and nothing
//! about databases. [`server`] hands every `tools/call` to the [`tools::Registry`], the framework
//! every tool uses: it validates the arguments against the schema generated from the tool's Rust
//! types, wraps the call in the tool's [`tools::policy`] (timeout, cancellation, retry, cache,
//! metrics) and turns the outcome into structured output plus a compact text rendering. The tool
//! kinds themselves live in their own modules ([`sql`] for warehouses), each plugged in through
//! the contract in [`tools::kind`] and listed in one place, [`kinds`]; what they share about results (columns, caps, renderings, output files) is
//! [`table`]. [`config`] turns the server's part of the TOML file into a validated
//! [`config::Config`] (each kind decodes its own part);
//! [`prompts`] serves the Markdown prompt library; [`cli`] is the command line.
//!
//! See `ARCHITECTURE.md` for the code map and the invariants each module keeps.

pub mod calendar;
pub mod cli;
pub mod config;
pub mod expr;
pub mod kinds;
pub mod ml;
pub mod prompts;
pub mod server;
pub mod sql;
pub mod stream;
pub mod table;
pub mod tools;
pub mod workflow;
