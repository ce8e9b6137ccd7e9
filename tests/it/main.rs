//! Integration tests: the real `datamcp` binary, driven over real transports by real clients,
//! against real databases. Modules are grouped by feature.

mod support;

mod accounts;
mod cli;
mod custom_tools;
mod engines;
mod errors;
mod explore;
mod garbage;
mod guard_attacks;
mod guard_corpus;
mod http_limits;
mod http_ops;
mod http_security;
mod http_sse;
mod http_streamable;
mod lean_context;
mod live_tools;
mod ml;
mod ml_mlflow;
mod mlflow_support;
mod mysql;
mod nested_calls;
mod output_files;
mod policies;
mod postgres;
mod protocol;
mod stdio;
mod stream_live;
mod streams;
mod streams_broker;
mod workflow_mcp;
mod workflows;
