//! What the server engines (PostgreSQL, MySQL/MariaDB) share: their settings, the rule that a
//! connection is reused only after a clean finish, the account policy, and the watcher that
//! stops a server-side query when its call is abandoned.

use std::future::Future;
use std::time::Duration;

use sqlx::Database;
use sqlx::pool::PoolConnection;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::account::AccountCheck;

/// How a server warehouse connects.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The warehouse's name, for logs.
    pub name: String,
    /// Refuse every query when the account can write.
    pub require_read_only_account: bool,
    /// Connection URL (may hold a password: never log it).
    pub url: String,
    /// Largest number of open connections.
    pub max_connections: u32,
    /// Longest wait for a connection, including connecting.
    pub acquire_timeout: Duration,
    /// Idle connections older than this are closed.
    pub idle_timeout: Duration,
    /// Upper bound of the server-side time limit of one query.
    pub statement_timeout: Duration,
}

/// A pooled connection that is closed, not reused, unless its query finished cleanly, so no
/// failed, interrupted or half-read session state reaches the next call.
pub struct Session<DB: Database> {
    /// The connection.
    pub conn: PoolConnection<DB>,
    /// Set once the query finished and the transaction was rolled back.
    pub clean: bool,
}

impl<DB: Database> Session<DB> {
    /// A session on `conn`, not yet clean.
    pub fn new(conn: PoolConnection<DB>) -> Self {
        Session { conn, clean: false }
    }
}

impl<DB: Database> Drop for Session<DB> {
    fn drop(&mut self) {
        if !self.clean {
            self.conn.close_on_drop();
        }
    }
}

/// The account policy, applied before each query: the account is inspected on first use
/// (`inspect`), a writable one is logged once, and when the config requires a read-only account
/// a writable one gets every query refused.
pub async fn enforce_account_policy<F>(
    settings: &ServerSettings,
    account: &OnceCell<AccountCheck>,
    inspect: F,
) -> Result<(), sqlx::Error>
where
    F: Future<Output = Result<AccountCheck, sqlx::Error>>,
{
    let check = account
        .get_or_try_init(|| async {
            let check = inspect.await?;
            warn_if_writable(settings, &check);
            Ok::<_, sqlx::Error>(check)
        })
        .await?;
    refuse_if_required(settings, check)
}

/// Logs, once per warehouse, that its account can write.
fn warn_if_writable(settings: &ServerSettings, check: &AccountCheck) {
    if check.can_write() && !settings.require_read_only_account {
        tracing::warn!(
            warehouse = %settings.name,
            capabilities = ?check.write_capabilities,
            "the warehouse's account can write; datamcp only reads, but use a read-only account (see README)"
        );
    }
}

/// Refuses the query when the config requires a read-only account and this one can write.
fn refuse_if_required(settings: &ServerSettings, check: &AccountCheck) -> Result<(), sqlx::Error> {
    if check.can_write() && settings.require_read_only_account {
        return Err(sqlx::Error::Configuration(
            format!(
                "require_read_only_account is set and the account {}; connect with a read-only role or user",
                check.write_capabilities.join(", ")
            )
            .into(),
        ));
    }
    Ok(())
}

/// Runs `work` while a watcher waits for `cancel`: should it fire first (the client cancelled,
/// or the deadline passed and the call's future was dropped), the watcher runs `stop`, which asks
/// the server, over another connection, to stop the query. Dropping our connection alone would
/// leave the query running. Returns the work's result and whether the watcher fired; a
/// connection whose watcher fired must not be reused, as the stop request could still reach it.
pub async fn watching<T, F, S>(cancel: &CancellationToken, stop: S, work: F) -> (T, bool)
where
    F: Future<Output = T>,
    S: FnOnce() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static,
{
    let finished = CancellationToken::new();
    let watcher = {
        let (cancel, finished) = (cancel.clone(), finished.clone());
        tokio::spawn(async move {
            tokio::select! {
                biased;
                _ = finished.cancelled() => false,
                _ = cancel.cancelled() => {
                    stop().await;
                    true
                }
            }
        })
    };
    let result = work.await;
    finished.cancel();
    let fired = watcher.await.unwrap_or(true);
    (result, fired)
}

/// The tool error for a driver failure that is not the database's own verdict on the query:
/// unreachable, overloaded, refused by the account policy, or broken in transit.
pub fn explain_connection_error(
    error: sqlx::Error,
    name: &str,
    place: &str,
) -> crate::tools::ToolError {
    use crate::tools::ToolError;
    match error {
        sqlx::Error::Configuration(reason) => {
            ToolError::Refused(format!("warehouse '{name}': {reason}"))
        }
        sqlx::Error::PoolTimedOut => ToolError::Upstream {
            message: format!(
                "warehouse '{name}' ({place}) is unreachable or overloaded: no connection within the connect timeout. Check that the server runs and accepts connections from this host"
            ),
            transient: true,
        },
        sqlx::Error::Io(io) => ToolError::Upstream {
            message: format!(
                "warehouse '{name}' ({place}) is unreachable: {io}. Check that the server runs and that host and port are right"
            ),
            transient: true,
        },
        sqlx::Error::Tls(e) => ToolError::Upstream {
            message: format!("warehouse '{name}' ({place}): TLS failed: {e}"),
            transient: false,
        },
        sqlx::Error::Protocol(e) => ToolError::Upstream {
            message: format!("warehouse '{name}' ({place}): protocol error: {e}"),
            transient: true,
        },
        other => ToolError::Upstream {
            message: format!("warehouse '{name}' ({place}) failed: {other}"),
            transient: false,
        },
    }
}
