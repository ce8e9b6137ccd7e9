//! Shared test helpers: the binary, a demo database generated once per run, private copies of
//! it for tests that change data, and an rmcp client speaking to `datamcp serve` over stdio.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Map, Value, json};
use sqlx::Connection as _;
use tokio::process::Command;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_datamcp");

/// A client session with a running server.
pub type Client = RunningService<RoleClient, ClientConfig>;

/// A data folder holding the generated demo database, shared by every test of this run.
pub fn demo_data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_leftovers();
        let dir = std::env::temp_dir().join(format!("datamcp-it-{}", std::process::id()));
        let status = std::process::Command::new(BIN)
            .args(["call", "sql_query", r#"{"sql": "SELECT 1"}"#])
            .env("DATAMCP_DATA_DIR", &dir)
            .stdout(Stdio::null())
            .status()
            .expect("run datamcp call");
        assert!(status.success(), "generating the demo database failed");
        dir
    })
}

/// Removes the data folders of earlier test runs whose process is gone.
fn remove_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("datamcp-it-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The shared demo database file.
pub fn demo_db() -> PathBuf {
    demo_data_dir().join("demo-v2.sqlite")
}

/// A private folder with a copy of the demo database (`shop.db`) and a config serving it as
/// warehouse `shop`, followed by `extra` TOML.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(demo_db(), dir.path().join("shop.db")).expect("copy demo db");
        let config = format!(
            "[warehouses.shop]\nurl = \"sqlite://{}\"\n\n{extra}\n",
            dir.path().join("shop.db").display()
        );
        std::fs::write(dir.path().join("datamcp.toml"), config).expect("write config");
        Sandbox { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("datamcp.toml")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("shop.db")
    }
}

/// A `datamcp serve` command with the shared data folder.
pub fn serve_command(config: Option<&Path>) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("DATAMCP_DATA_DIR", demo_data_dir());
    command.env_remove("DATAMCP_CONFIG");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command
}

/// Spawns `datamcp serve` and connects an rmcp client with the `initialize` handshake at
/// `version`, or with `server/discover` for the stateless 2026-07-28 protocol.
pub async fn connect_with(config: Option<&Path>, version: ProtocolVersion) -> (Client, u32) {
    // DATAMCP_TEST_LOGS=1 shows the servers' logs, for debugging a failing test.
    let logs = if std::env::var_os("DATAMCP_TEST_LOGS").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let (transport, _stderr) = TokioChildProcess::builder(serve_command(config))
        .stderr(logs)
        .spawn()
        .expect("spawn datamcp serve");
    let pid = transport.id().expect("server pid");
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("datamcp-tests", "0"),
    )
    .with_protocol_version(version.clone());
    let lifecycle = if version.has_initialize() {
        ClientLifecycleMode::Initialize
    } else {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![version],
        }
    };
    let client = info
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .expect("connect to datamcp");
    (client, pid)
}

/// Spawns `datamcp serve` and connects with the newest protocol that still has `initialize`.
pub async fn connect(config: Option<&Path>) -> Client {
    connect_with(config, ProtocolVersion::V_2025_11_25).await.0
}

/// Calls a tool with JSON arguments.
pub async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object");
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .expect("tools/call answered")
}

/// The text of a result's first content block.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// The structured content as an object.
pub fn structured(result: &CallToolResult) -> Map<String, Value> {
    match &result.structured_content {
        Some(Value::Object(map)) => map.clone(),
        other => panic!(
            "expected structured content, got {other:?}: {}",
            text(result)
        ),
    }
}

/// Whether the result is an error.
/// The execution facts of a result (id, elapsed time, attempts, records, cached, warnings),
/// which travel in `_meta.datamcp.execution`, out of the model's way.
pub fn execution(result: &CallToolResult) -> Value {
    serde_json::to_value(result).expect("json")["_meta"]["datamcp"]["execution"].clone()
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// SHA-256-free fingerprint of a file: its bytes.
pub fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read file")
}

/// A TCP forwarder on loopback that can be switched off (dropping every connection) and on,
/// to play a database that goes down and comes back.
pub struct Proxy {
    address: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    pub async fn start(target: &'static str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (up_flag, generation_counter) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up_flag.load(Ordering::SeqCst) {
                    continue; // refused: the connection is dropped at once
                }
                let born = generation_counter.load(Ordering::SeqCst);
                let counter = generation_counter.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let cut = async {
                        while counter.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Proxy {
            address,
            up,
            generation,
        }
    }

    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// Down: new connections are dropped and open ones cut. Up: traffic flows again.
    pub async fn set_up(&self, up: bool) {
        use std::sync::atomic::Ordering;
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.generation.fetch_add(1, Ordering::SeqCst);
            // The forwarders notice within 20 ms.
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        }
    }
}

/// A query that runs until it is stopped (by cancellation or the deadline).
pub const ENDLESS: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

/// A `datamcp serve --http` process on a free loopback port, killed when dropped. Its log
/// lines are collected for tests that check what is (and is not) logged.
pub struct HttpServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    logs: std::sync::Arc<std::sync::Mutex<String>>,
}

impl HttpServer {
    /// Starts `datamcp serve --http 127.0.0.1:0 ARGS…` with `env`, and waits until it listens.
    pub fn start(config: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> HttpServer {
        use std::io::BufRead;
        let mut command = std::process::Command::new(BIN);
        command
            .args(["serve", "--http", "127.0.0.1:0"])
            .args(args)
            .env("DATAMCP_DATA_DIR", demo_data_dir())
            .env_remove("DATAMCP_CONFIG")
            .env_remove("DATAMCP_AUTH_TOKEN")
            .env("DATAMCP_LOG", "info,rmcp=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command.spawn().expect("spawn datamcp serve --http");
        let stderr = child.stderr.take().expect("stderr");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let sink = std::sync::Arc::clone(&logs);
        std::thread::spawn(move || {
            let echo = std::env::var_os("DATAMCP_TEST_LOGS").is_some();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if echo {
                    eprintln!("[server] {line}");
                }
                if let Some(rest) = line.split("serving MCP on http://").nth(1) {
                    let address = rest.split('/').next().unwrap_or_default().to_owned();
                    let _ = address_tx.send(address);
                }
                let mut logs = sink.lock().expect("logs");
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let address = address_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "datamcp did not start listening; its log:\n{}",
                    logs.lock().expect("logs")
                )
            });
        HttpServer {
            child,
            base: format!("http://{address}"),
            logs,
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs").clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// One value of the Prometheus text at `/metrics`, by its full series name.
    pub async fn metric(&self, series: &str, token: Option<&str>) -> f64 {
        let mut request = reqwest::Client::new().get(self.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let text = request
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    }

    /// Whether the number of tool calls running on the server reaches `calls` within 5 s.
    pub async fn calls_in_flight_become(&self, calls: f64) -> bool {
        eventually(5, || async {
            self.metric("datamcp_calls_in_flight", None).await == calls
        })
        .await
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An rmcp client over Streamable HTTP with the `initialize` handshake.
pub async fn connect_http(url: &str, token: Option<&str>) -> Client {
    connect_http_with(client_info(ProtocolVersion::V_2025_11_25), url, token, None).await
}

/// The client description the tests announce, at `version`.
pub fn client_info(version: ProtocolVersion) -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("datamcp-tests", "0"),
    )
    .with_protocol_version(version)
}

/// An rmcp client with `handler` over Streamable HTTP: `initialize`, or `server/discover` when
/// `discover` names the stateless protocol version to use.
pub async fn connect_http_with<H: rmcp::ClientHandler>(
    handler: H,
    url: &str,
    token: Option<&str>,
    discover: Option<ProtocolVersion>,
) -> RunningService<RoleClient, H> {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    let lifecycle = match discover {
        Some(version) => ClientLifecycleMode::Discover {
            preferred_versions: vec![version],
        },
        None => ClientLifecycleMode::Initialize,
    };
    handler
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .expect("connect over Streamable HTTP")
}

/// Polls `condition` every 20 ms for up to `seconds`; true when it held.
pub async fn eventually<F, Fut>(seconds: u64, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// Opens a session with `initialize` and `notifications/initialized`; returns its id.
pub async fn raw_session(http: &reqwest::Client, url: &str) -> String {
    let response = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}}),
        )
        .send()
        .await
        .expect("initialize");
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let _ = response.text().await;
    let initialized = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .expect("initialized");
    assert_eq!(initialized.status(), 202);
    session
}

/// The test PostgreSQL server, as the superuser.
pub const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A PostgreSQL schema of its own for one test, dropped at the end.
pub struct PgSchema {
    /// The schema's name, unique to this test process.
    pub name: String,
}

impl PgSchema {
    /// Creates the schema afresh and runs `setup` in it.
    pub async fn new(test: &str, setup: &str) -> PgSchema {
        let name = format!("it_{}_{test}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(PG_SERVER)
            .await
            .expect("connect to PostgreSQL");
        let sql = format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}; SET search_path = {name}; {setup}"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("fixture");
        PgSchema { name }
    }

    /// Drops the schema and everything in it.
    pub async fn drop(self) {
        let mut conn = sqlx::PgConnection::connect(PG_SERVER)
            .await
            .expect("connect");
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("drop schema");
    }
}

/// A JSON object literal as tool arguments.
pub fn arguments(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

/// Spawns `datamcp serve` with `config` and connects `handler` over stdio with `initialize`.
pub async fn connect_stdio_with<H: rmcp::ClientHandler>(
    handler: H,
    config: &Path,
) -> RunningService<RoleClient, H> {
    let (transport, _) = TokioChildProcess::builder(serve_command(Some(config)))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn datamcp serve");
    handler
        .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
        .await
        .expect("connect over stdio")
}

/// PostgreSQL backends of `application` running a `generate_series` query right now: it shows
/// as its DECLARE, then as the FETCH that reads its rows (parallel workers count too).
pub async fn pg_running_series(application: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(PG_SERVER)
        .await
        .expect("connect");
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' \
         AND (query LIKE '%generate_series%' OR query LIKE 'FETCH %')",
    )
    .bind(application)
    .fetch_one(&mut conn)
    .await
    .expect("pg_stat_activity")
}

/// A tool named `name` that says it writes (destructive, not idempotent), for the read-only
/// rules.
pub struct Writer(pub &'static str);

/// [`Writer`]'s arguments: none.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct NoArgs {}

/// [`Writer`]'s answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Done {
    done: bool,
}

impl datamcp::tools::Tool for Writer {
    type Params = NoArgs;
    type Output = Done;

    fn spec(&self) -> datamcp::tools::ToolSpec {
        datamcp::tools::ToolSpec {
            name: self.0.into(),
            title: self.0.replace('_', " "),
            description: format!("{} (writes)", self.0.replace('_', " ")),
            annotations: datamcp::tools::Annotations {
                read_only_hint: false,
                destructive_hint: true,
                idempotent_hint: false,
                open_world_hint: false,
            },
        }
    }

    async fn invoke(
        &self,
        _ctx: &datamcp::tools::CallContext,
        _params: &NoArgs,
    ) -> Result<Done, datamcp::tools::ToolError> {
        Ok(Done { done: true })
    }
}
