//! MLflow for the ML tests: a real tracking server (sqlite backend, artifacts proxied over REST)
//! and a real scoring server, each on a free loopback port, from the MLflow 3.17.2 venv that
//! `.ci/run` installs; and the Python helpers in `tests/ml/` (the seed script, the reference
//! values computed by scikit-learn, SciPy and NumPy).
//!
//! Everything here blocks (`std::process`, a raw `TcpStream` for readiness), so it can be called
//! from sync and async tests alike. MLflow answers 403 to a `Host` header that is not loopback,
//! so clients must address it as `127.0.0.1:PORT` (what `url()` gives).

// Each ML test uses its own part of the fixture.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a server may take to answer its readiness probe. It usually takes 10 to 14 s (two
/// Python processes import MLflow), more on a loaded machine.
const READY: Duration = Duration::from_secs(90);

/// The Python of the MLflow venv: `DATAMCP_MLFLOW_PYTHON`, else the one `.ci/run` installs.
pub fn mlflow_python() -> PathBuf {
    if let Some(path) = std::env::var_os("DATAMCP_MLFLOW_PYTHON") {
        return PathBuf::from(path);
    }
    let cached = dirs::home_dir()
        .expect("home")
        .join(".cache/datamcp/mlflow-3.17.2/bin/python");
    assert!(
        cached.exists(),
        "MLflow is not installed: run .ci/run once (it installs MLflow 3.17.2 into {}) or set DATAMCP_MLFLOW_PYTHON",
        cached
            .parent()
            .and_then(Path::parent)
            .expect("venv")
            .display()
    );
    cached
}

/// A Python helper of the tests, in `tests/ml/`.
fn helper(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ml")
        .join(name)
}

/// A command running the venv's Python, with the venv first on `PATH` (`mlflow models serve`
/// starts `uvicorn` by name), no telemetry, and no MLflow settings inherited from the caller.
fn python() -> Command {
    let python = mlflow_python();
    let bin = python.parent().expect("venv bin").to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&path));
    let mut command = Command::new(python);
    command
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "true")
        .env("GIT_PYTHON_REFRESH", "quiet")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_REGISTRY_URI")
        .stdin(Stdio::null());
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `GET path` on 127.0.0.1:`port`: the status code and body, or `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_owned()))
}

/// Starts `command` in a process group of its own (MLflow runs its server in a child process),
/// with stdout and stderr appended to `log`.
fn spawn(command: &mut Command, log: &Path) -> Child {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log");
    command
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("start python")
}

/// Kills `child`'s whole process group and waits until none of it is left, so the port and the
/// database are free when this returns.
fn kill_group(child: &mut Child) {
    let group = child.id();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let started = Instant::now();
    while group_alive(group) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process of group `group` still runs. Zombies do not count: the server's own child
/// is reaped by init, which may take its time.
fn group_alive(group: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let mut fields = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1);
        state.is_some_and(|s| s != "Z") && pgrp == Some(group.to_string().as_str())
    })
}

/// Waits until `GET path` answers 200, panicking with the log if the process exits or the
/// deadline passes.
fn wait_ready(child: &mut Child, port: u16, path: &str, what: &str, log: &Path) {
    let started = Instant::now();
    loop {
        if matches!(http_get(port, path), Some((200, _))) {
            return;
        }
        let exited = child.try_wait().expect("try_wait");
        if exited.is_some() || started.elapsed() > READY {
            kill_group(child);
            panic!(
                "{what} did not answer GET {path} on port {port} ({}); its log:\n{}",
                exited.map_or_else(
                    || format!("not ready after {READY:?}"),
                    |s| format!("exited: {s}")
                ),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An MLflow tracking server on 127.0.0.1 with a sqlite backend and proxied artifacts
/// (`/api/2.0/mlflow-artifacts/artifacts/...`), in a temporary folder of its own.
pub struct MlflowServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl MlflowServer {
    /// Starts a server with an empty database and waits until `/health` answers.
    pub fn start() -> MlflowServer {
        let mut server = MlflowServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.up();
        server
    }

    fn up(&mut self) {
        let dir = self.dir.path();
        let mut command = python();
        command
            .args(["-m", "mlflow", "server"])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .arg("--serve-artifacts")
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--workers", "1"])
            // No huey job runner: seven processes and seconds of start-up the tests do not use.
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false");
        let log = self.log_path();
        let mut child = spawn(&mut command, &log);
        wait_ready(&mut child, self.port, "/health", "mlflow server", &log);
        self.child = Some(child);
    }

    /// Stops the server (the whole process tree); the database and artifacts stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// Starts the server again on the same port, database and artifacts.
    pub fn restart(&mut self) {
        self.stop();
        self.up();
    }

    /// `http://127.0.0.1:PORT`, the tracking URI.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's folder: `mlflow.db`, `artifacts/`, `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Everything the server logged so far (across restarts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs `tests/ml/mlflow_seed.py` against this server and returns what it created (see the
    /// script: experiment `churn`, runs `weak`/`strong`/`tree`, registered models `churn-model`
    /// with alias `champion` on version 1 and `churn-tree`, the model URI to serve, a sample).
    pub fn seed(&self) -> Value {
        self.run_seed(None)
    }

    /// `seed`, also writing the dataset to `sqlite` as table `customers`
    /// (`tenure_months`, `monthly_spend`, `support_tickets`, `churned`).
    pub fn seed_with_dataset(&self, sqlite: &Path) -> Value {
        self.run_seed(Some(sqlite))
    }

    fn run_seed(&self, dataset: Option<&Path>) -> Value {
        let mut command = python();
        command
            .arg(helper("mlflow_seed.py"))
            .args(["--tracking-uri", &self.url()])
            .current_dir(self.dir.path());
        if let Some(path) = dataset {
            command.arg("--dataset-sqlite").arg(path);
        }
        let output = command.output().expect("run mlflow_seed.py");
        assert!(
            output.status.success(),
            "mlflow_seed.py failed ({}):\n{}\nserver log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "mlflow_seed.py printed no JSON ({e}):\n{}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `mlflow models serve` for one model (`models:/NAME/VERSION`, `models:/NAME@ALIAS`, ...) on
/// 127.0.0.1, in the venv's own environment (`--env-manager local`). `POST /invocations` takes
/// `{"dataframe_split": {"columns": [...], "data": [[...]]}}` and answers
/// `{"predictions": [...]}`; errors are 400 with `{"error_code", "message", ...}`.
pub struct ScoringServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl ScoringServer {
    /// Starts serving `model_uri`, fetched from the tracking server at `tracking_uri`, and waits
    /// until `/ping` answers.
    pub fn start(model_uri: &str, tracking_uri: &str) -> ScoringServer {
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("scoring.log");
        let mut command = python();
        command
            .args(["-m", "mlflow", "models", "serve", "-m", model_uri])
            .args(["--env-manager", "local"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("MLFLOW_TRACKING_URI", tracking_uri)
            .current_dir(dir.path());
        let mut child = spawn(&mut command, &log);
        wait_ready(&mut child, port, "/ping", "mlflow models serve", &log);
        ScoringServer { port, dir, child }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the scoring server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("scoring.log")).unwrap_or_default()
    }
}

impl Drop for ScoringServer {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Reference values from `tests/ml/expected.py` (scikit-learn, SciPy, NumPy) for `request`,
/// e.g. `{"op": "classification", "y_true": [...], "y_pred": [...], "y_score": [...]}`; a list
/// of requests gets a list of answers from one Python start (each start costs about 1.5 s).
pub fn expected(request: Value) -> Value {
    let mut child = python()
        .arg(helper("expected.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run expected.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let output = child.wait_with_output().expect("expected.py");
    assert!(
        output.status.success(),
        "expected.py failed for {request}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("expected.py printed JSON")
}
