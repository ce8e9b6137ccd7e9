//! What the server engines (PostgreSQL, MySQL/MariaDB) share: their settings, the rule that a
//! connection is reused only after a clean finish, the account policy, and the watcher that
//! stops a server-side query when its call is abandoned.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::account::AccountCheck;

/// How long a call waits for a new connection before datamcp checks, with one plain TCP connect,
/// whether anything listens at all. sqlx retries a refused connection until the connect timeout
/// runs out, so without this check a stopped server costs every call the whole timeout. The
/// delay keeps the check off the normal path: a loopback or LAN connection is made well within it.
const LISTENER_CHECK_AFTER: Duration = Duration::from_millis(100);

/// Why a server engine could not answer, before the warehouse adds its name and advice.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The driver or the database failed.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// The address refuses TCP connections: the server is not running there.
    #[error("nothing listens on {0}")]
    NothingListens(String),
    /// Every connection was in use for the whole connect timeout.
    #[error("all {max} connections are busy; waited {} ms", .waited.as_millis())]
    PoolBusy {
        /// The pool's size.
        max: u32,
        /// How long the call waited.
        waited: Duration,
    },
    /// A row larger than the call's byte budget, refused before it was converted.
    #[error(transparent)]
    TooLarge(#[from] crate::table::TooLarge),
    /// Input the database cannot take, found before it was sent.
    #[error("{0}")]
    InvalidInput(String),
}

/// What a server engine's pool is doing, for metrics and for telling a full pool from a server
/// that is down. The counts are datamcp's own: sqlx reports neither waiting calls nor
/// connections handed out.
#[derive(Debug, Default)]
pub struct PoolCounters {
    busy: AtomicUsize,
    waiting: AtomicUsize,
}

impl PoolCounters {
    /// Connections held by calls now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Calls waiting for a connection now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Decrements a counter when dropped, so a cancelled call cannot leave it high.
struct Held(Arc<PoolCounters>, fn(&PoolCounters) -> &AtomicUsize);

impl Held {
    fn new(counters: &Arc<PoolCounters>, which: fn(&PoolCounters) -> &AtomicUsize) -> Self {
        which(counters).fetch_add(1, Ordering::Relaxed);
        Held(Arc::clone(counters), which)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        (self.1)(&self.0).fetch_sub(1, Ordering::Relaxed);
    }
}

/// Finds a new connection's server-side id (PostgreSQL's backend pid, MySQL's connection id), which
/// the watcher needs to stop a query from another connection. Asked once per connection, so
/// a call does not spend a round trip on it.
pub type Identify<DB> = for<'c> fn(
    &'c mut <DB as Database>::Connection,
) -> futures::future::BoxFuture<'c, Result<u64, sqlx::Error>>;

/// A server engine's connection source: sqlx's pool opens and closes the connections, and
/// datamcp keeps the idle ones itself, each with what it knows of the connection (its
/// server-side id and the time limit now set on it), so a call can use both without asking the
/// server. A connection leaves sqlx's pool once and goes back to it only to be closed.
pub struct ServerPool<DB: Database> {
    /// The sqlx pool, which connects (running its `after_connect` setup) and closes.
    pub pool: Pool<DB>,
    /// Busy and waiting counts.
    pub counters: Arc<PoolCounters>,
    /// `host:port` of the server.
    pub address: Option<(String, u16)>,
    /// The pool's size.
    pub max_connections: u32,
    permits: Arc<Semaphore>,
    idle: Arc<Mutex<Vec<Pooled<DB>>>>,
    idle_timeout: Duration,
    acquire_timeout: Duration,
    identify: Identify<DB>,
}

/// An idle connection and what datamcp knows of it.
struct Pooled<DB: Database> {
    conn: PoolConnection<DB>,
    backend: u64,
    time_limit: Option<Duration>,
    since: Instant,
}

impl<DB: Database> ServerPool<DB> {
    /// A pool over `pool` (which should not test connections before handing them out, and may
    /// run per-connection setup in `after_connect`), `max_connections` at most.
    pub fn new(
        pool: Pool<DB>,
        settings: &ServerSettings,
        address: Option<(String, u16)>,
        identify: Identify<DB>,
    ) -> Self {
        ServerPool {
            pool,
            counters: Default::default(),
            address,
            max_connections: settings.max_connections,
            permits: Arc::new(Semaphore::new(settings.max_connections.max(1) as usize)),
            idle: Arc::new(Mutex::new(Vec::new())),
            idle_timeout: settings.idle_timeout,
            acquire_timeout: settings.acquire_timeout,
            identify,
        }
    }

    /// A connection for one call. A refused address fails within about
    /// [`LISTENER_CHECK_AFTER`] instead of after the connect timeout, and a timeout while every
    /// connection is busy is reported as a full pool, not as an unreachable server.
    pub async fn acquire(&self) -> Result<Session<DB>, EngineError> {
        let started = Instant::now();
        let waiting = Held::new(&self.counters, |c| &c.waiting);
        let acquire = async {
            let permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            let pooled = match self.take_idle() {
                Some(pooled) => pooled,
                None => {
                    let mut conn = self.pool.acquire().await?;
                    let backend = match (self.identify)(&mut conn).await {
                        Ok(backend) => backend,
                        Err(error) => {
                            conn.close_on_drop();
                            return Err(error);
                        }
                    };
                    Pooled {
                        conn,
                        backend,
                        time_limit: None,
                        since: Instant::now(),
                    }
                }
            };
            Ok::<_, sqlx::Error>((pooled, permit))
        };
        let listener_check = async {
            tokio::time::sleep(LISTENER_CHECK_AFTER).await;
            // With every connection held by a call, the pool is not connecting: it is full.
            if self.counters.busy() < self.max_connections as usize
                && let Some((host, port)) = &self.address
                && let Err(error) = tokio::net::TcpStream::connect((host.as_str(), *port)).await
                && error.kind() == std::io::ErrorKind::ConnectionRefused
            {
                return format!("{host}:{port}");
            }
            std::future::pending().await
        };
        let acquired = tokio::select! {
            acquired = tokio::time::timeout(self.acquire_timeout, acquire) => {
                acquired.unwrap_or(Err(sqlx::Error::PoolTimedOut))
            }
            address = listener_check => return Err(EngineError::NothingListens(address)),
        };
        drop(waiting);
        match acquired {
            Ok((pooled, permit)) => Ok(Session {
                conn: Some(pooled.conn),
                backend: pooled.backend,
                time_limit: pooled.time_limit,
                clean: false,
                idle: Arc::clone(&self.idle),
                _permit: permit,
                _busy: Held::new(&self.counters, |c| &c.busy),
            }),
            Err(sqlx::Error::PoolTimedOut)
                if self.counters.busy() >= self.max_connections as usize =>
            {
                Err(EngineError::PoolBusy {
                    max: self.max_connections,
                    waited: started.elapsed(),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The most recently used idle connection that has not idled too long; older ones are closed.
    fn take_idle(&self) -> Option<Pooled<DB>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut pooled) = idle.pop() {
            if pooled.since.elapsed() < self.idle_timeout {
                return Some(pooled);
            }
            // Closed, not handed back to sqlx: its next owner would not know its time limit.
            pooled.conn.close_on_drop();
        }
        None
    }

    /// Closes every connection, waiting for busy ones to finish.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for mut pooled in idle {
            pooled.conn.close_on_drop();
        }
        self.permits.close();
        self.pool.close().await;
    }

    /// Gauges of this pool: size, open, in use, idle and waiting.
    pub fn figures(&self) -> PoolFigures {
        PoolFigures {
            max: self.max_connections as usize,
            open: self.pool.size() as usize,
            in_use: self.counters.busy(),
            idle: self.idle.lock().unwrap_or_else(|p| p.into_inner()).len(),
            waiting: self.counters.waiting(),
        }
    }
}

/// A pool's state at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolFigures {
    /// Most connections it may open.
    pub max: usize,
    /// Connections open (or being opened).
    pub open: usize,
    /// Connections held by calls.
    pub in_use: usize,
    /// Open connections waiting for a call.
    pub idle: usize,
    /// Calls waiting for a connection.
    pub waiting: usize,
}

/// How a server warehouse connects.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The warehouse's name, for logs.
    pub name: String,
    /// Refuse every query when the account can write.
    pub require_read_only_account: bool,
    /// Use the account even when it holds administrative powers.
    pub allow_privileged_account: bool,
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
    conn: Option<PoolConnection<DB>>,
    /// The server's id for this connection (backend pid, connection id).
    pub backend: u64,
    /// The session-level time limit datamcp set on it; `None` while it is the one the connection
    /// was opened with.
    pub time_limit: Option<Duration>,
    /// Set once the query finished and the session was reset to how it was opened.
    pub clean: bool,
    idle: Arc<Mutex<Vec<Pooled<DB>>>>,
    _permit: OwnedSemaphorePermit,
    _busy: Held,
}

impl<DB: Database> Session<DB> {
    /// The connection.
    pub fn conn(&mut self) -> &mut DB::Connection {
        // Taken only in `drop`.
        self.conn.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<DB: Database> Drop for Session<DB> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !self.clean {
            conn.close_on_drop();
            return;
        }
        // Back to the idle list before the permit is released (fields drop after this body), so
        // the next call finds it.
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Pooled {
                conn,
                backend: self.backend,
                time_limit: self.time_limit,
                since: Instant::now(),
            });
    }
}

/// The account policy, applied before each query: the account is inspected on first use
/// (`inspect`); a privileged one gets every query refused unless the config allows it; a
/// writable one is logged once, and refused when the config requires a read-only account.
/// `postgres` picks the dialect of the advice in the refusal.
pub async fn enforce_account_policy<F>(
    settings: &ServerSettings,
    account: &OnceCell<AccountCheck>,
    postgres: bool,
    inspect: F,
) -> Result<(), sqlx::Error>
where
    F: Future<Output = Result<AccountCheck, sqlx::Error>>,
{
    let check = account
        .get_or_try_init(|| async {
            let check = inspect.await?;
            if check.is_privileged() && settings.allow_privileged_account {
                tracing::warn!(
                    warehouse = %settings.name,
                    privileges = ?check.privileges,
                    "the warehouse's account is privileged and allow_privileged_account is set; use a read-only account (see README)"
                );
            }
            warn_if_writable(settings, &check);
            Ok::<_, sqlx::Error>(check)
        })
        .await?;
    if check.is_privileged() && !settings.allow_privileged_account {
        return Err(sqlx::Error::Configuration(
            super::account::privileged_refusal(check, postgres).into(),
        ));
    }
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

/// The tool error for a failure that is not the database's own verdict on the query:
/// nothing listening, a full pool, an unreachable server, refused by the account policy,
/// broken in transit, or input refused before it was sent.
pub fn explain_engine_error(
    error: EngineError,
    name: &str,
    place: &str,
) -> crate::tools::ToolError {
    use crate::tools::ToolError;
    let error = match error {
        EngineError::Sql(error) => error,
        // Retrying cannot help: no server runs there until someone starts it.
        EngineError::NothingListens(address) => {
            return ToolError::Upstream {
                message: format!(
                    "warehouse '{name}': nothing listens on {address}; start the database server or correct host and port in the warehouse URL"
                ),
                transient: false,
            };
        }
        // The call has already waited the whole connect timeout; a retry would wait again.
        EngineError::PoolBusy { max, waited } => {
            return ToolError::Upstream {
                message: format!(
                    "all {max} connections of warehouse '{name}' are busy; waited {} ms; raise max_connections or retry later",
                    waited.as_millis()
                ),
                transient: false,
            };
        }
        EngineError::TooLarge(too_large) => {
            return ToolError::InvalidArguments(too_large.to_string());
        }
        EngineError::InvalidInput(reason) => return ToolError::InvalidArguments(reason),
    };
    match error {
        sqlx::Error::Configuration(reason) => {
            ToolError::Refused(format!("warehouse '{name}': {reason}"))
        }
        sqlx::Error::PoolTimedOut => ToolError::Upstream {
            message: format!(
                "warehouse '{name}' ({place}): no connection could be made within the connect timeout. Check that the server runs, accepts connections from this host and is not overloaded"
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

/// Refuses SQL text holding a NUL byte: the PostgreSQL protocol ends strings at NUL, so the
/// server would see a different statement, and sqlx then reports a protocol error that looks
/// like a broken connection.
pub fn refuse_nul_in_sql(sql: &str) -> Result<(), EngineError> {
    if sql.contains('\0') {
        return Err(EngineError::InvalidInput(
            "the SQL contains a NUL byte (\\u0000); remove it".to_owned(),
        ));
    }
    Ok(())
}
