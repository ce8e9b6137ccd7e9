//! The `datamcp` binary: parse the command line, log to stderr, run, map the outcome to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    datamcp::cli::main()
}
