//! MCP over stdio: the transport agent hosts use when they launch datamcp as a child process.
//! Stdout carries protocol messages only; logs go to stderr.

use rmcp::ServiceExt;

use super::DataMcp;

/// Serves `server` on stdin/stdout until the client closes stdin or the process is told to stop.
pub async fn serve(server: DataMcp) -> Result<(), std::io::Error> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    tokio::select! {
        result = running.waiting() => {
            result.map_err(std::io::Error::other)?;
        }
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted, shutting down");
        }
    }
    Ok(())
}
