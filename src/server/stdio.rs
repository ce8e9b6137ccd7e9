//! MCP over stdio: the transport agent hosts use when they launch datamcp as a child process.
//!
//! One JSON-RPC message per line. Stdout carries protocol messages only; logs go to stderr. A
//! line that is not a JSON-RPC message gets the JSON-RPC error reply (parse error or invalid
//! request, with the request id when one can be read) and a log line that names the problem but
//! never the content, which may hold SQL or secrets. A line longer than [`MAX_LINE_BYTES`] is
//! discarded as it streams in, so a runaway client cannot exhaust memory.
//!
//! A request that reuses the id of one still running gets an "id already in use" error: rmcp
//! keys running requests by id, so it would otherwise answer only one of the two and drop the
//! other's answer without a word.

use std::borrow::Cow;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::model::ErrorData;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServiceExt};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use super::DataMcp;
use super::jsonrpc::InFlight;

/// The longest message accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Serves `server` on stdin/stdout until the client closes stdin or `shutdown` resolves (the
/// process is told to stop).
pub async fn serve(
    server: DataMcp,
    shutdown: impl Future<Output = ()>,
) -> Result<(), std::io::Error> {
    let transport = LineTransport::new(stdin(), stdout());
    let running = server
        .serve(transport)
        .await
        .map_err(std::io::Error::other)?;
    tokio::select! {
        result = running.waiting() => {
            result.map_err(std::io::Error::other)?;
        }
        () = shutdown => {
            tracing::info!("told to stop, shutting down");
        }
    }
    Ok(())
}

/// Stdin, read through the event loop when it is a pipe (as agent hosts launch servers), which
/// saves a hand-off to a blocking thread on every read; otherwise tokio's blocking stdin.
fn stdin() -> Box<dyn AsyncRead + Send + Unpin> {
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(tokio::net::unix::pipe::Receiver::from_owned_fd);
    match pipe {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// Stdout, written through the event loop when it is a pipe; otherwise tokio's blocking stdout.
fn stdout() -> Box<dyn AsyncWrite + Send + Unpin> {
    let pipe = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(tokio::net::unix::pipe::Sender::from_owned_fd);
    match pipe {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    }
}

/// Newline-delimited JSON-RPC over any byte stream pair.
pub struct LineTransport<R, W> {
    reader: BufReader<R>,
    line: Vec<u8>,
    discarding: bool,
    writer: Arc<Mutex<W>>,
    in_flight: InFlight,
}

impl<R, W> LineTransport<R, W>
where
    R: tokio::io::AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    /// A transport reading from `reader` and writing to `writer`.
    pub fn new(reader: R, writer: W) -> Self {
        LineTransport {
            reader: BufReader::new(reader),
            line: Vec::new(),
            discarding: false,
            writer: Arc::new(Mutex::new(writer)),
            in_flight: InFlight::default(),
        }
    }

    /// Reads the next complete line into `self.line`. Cancel-safe: bytes are moved out of the
    /// reader's buffer only together with their copy into `self.line`, so a dropped read resumes
    /// where it stopped. Returns `None` at end of input.
    async fn next_line(&mut self) -> Option<Line> {
        loop {
            let (consumed, complete) = {
                let available = match self.reader.fill_buf().await {
                    Ok(available) => available,
                    Err(error) => {
                        tracing::error!(%error, "cannot read stdin");
                        return None;
                    }
                };
                if available.is_empty() {
                    return None;
                }
                let newline = available.iter().position(|&b| b == b'\n');
                let take = newline.map_or(available.len(), |i| i + 1);
                if !self.discarding {
                    if self.line.len() + take > MAX_LINE_BYTES {
                        self.discarding = true;
                        self.line = Vec::new();
                    } else {
                        self.line.extend_from_slice(&available[..take]);
                    }
                }
                (take, newline.is_some())
            };
            Pin::new(&mut self.reader).consume(consumed);
            if complete {
                if std::mem::take(&mut self.discarding) {
                    return Some(Line::Oversized);
                }
                return Some(Line::Complete);
            }
        }
    }
}

enum Line {
    Complete,
    Oversized,
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: tokio::io::AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn name() -> Cow<'static, str> {
        "stdio".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.in_flight.answered(&item);
        write_line(self.writer.clone(), item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let line = self.next_line().await?;
            let text = std::mem::take(&mut self.line);
            let reply = match line {
                Line::Oversized => {
                    tracing::warn!(
                        limit = MAX_LINE_BYTES,
                        "dropped a message longer than the limit"
                    );
                    let message = format!(
                        "message longer than {MAX_LINE_BYTES} bytes; send smaller requests"
                    );
                    (ErrorData::invalid_request(message, None), None)
                }
                Line::Complete => {
                    let trimmed = text.trim_ascii();
                    if trimmed.is_empty() {
                        continue;
                    }
                    match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(trimmed) {
                        Ok(message) => match self.in_flight.claim(&message) {
                            Ok(()) => return Some(message),
                            Err(duplicate) => duplicate,
                        },
                        Err(error) => super::jsonrpc::rejection(trimmed, &error),
                    }
                }
            };
            let (error, id) = reply;
            let reply = TxJsonRpcMessage::<RoleServer>::error(error, id);
            if let Err(error) = write_line(self.writer.clone(), reply).await {
                tracing::error!(%error, "cannot write to stdout");
                return None;
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.lock().await.shutdown().await
    }
}

/// Writes one message and its newline, whole, under the writer's lock.
async fn write_line<W: AsyncWrite + Unpin>(
    writer: Arc<Mutex<W>>,
    message: TxJsonRpcMessage<RoleServer>,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(&message).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    let mut writer = writer.lock().await;
    writer.write_all(&bytes).await?;
    writer.flush().await
}
