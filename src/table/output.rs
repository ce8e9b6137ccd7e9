//! Output files: a result too large to inline is written to the configured output folder as
//! Parquet and returned as a resource link, which `resources/read` serves.
//!
//! The folder is not trusted: other programs (or other users) may put files, links or
//! look-alikes in it. So `resources/read` serves only files this process wrote, recorded at
//! write time by device and inode, only to the principal whose call wrote them, and never
//! through a symbolic link. The files this process wrote share a size quota; when a new file
//! would pass it, the oldest are deleted first (a file larger than the whole quota is refused).

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{Column, parquet};
use crate::tools::context::Invocation;
use crate::tools::resources::{
    ResourceContent, ResourceInfo, ResourceProvider, ResourceTemplateInfo,
};
use crate::tools::{CallContext, Principal, Registry, ToolError};

/// URI prefix of output files.
pub const URI_PREFIX: &str = "datamcp://output/";
/// MIME type of Parquet files.
pub const MIME: &str = "application/vnd.apache.parquet";

/// Default of the output quota: what the files this process wrote may take together.
pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;

/// A result written to a file.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OutputFile {
    /// Resource URI to read it with `resources/read`.
    pub uri: String,
    /// File name in the output folder.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// MIME type.
    pub mime_type: String,
}

impl OutputFile {
    /// The resource link a tool returns for the file, `description` saying what it holds.
    pub fn link(&self, description: String) -> ResourceInfo {
        ResourceInfo {
            uri: self.uri.clone(),
            name: self.name.clone(),
            description,
            mime_type: self.mime_type.clone(),
        }
    }
}

/// Writes `rows` under `columns` as a Parquet file in `dir`, named after the call and readable
/// only by the call's principal, on a blocking thread.
pub async fn write_parquet(
    dir: &Path,
    ctx: &CallContext,
    columns: &[Column],
    rows: Vec<Vec<Value>>,
) -> Result<OutputFile, ToolError> {
    let name = format!("datamcp-{}.parquet", ctx.execution_id());
    let (dir, file_name, owner, columns) = (
        dir.to_path_buf(),
        name.clone(),
        ctx.principal().clone(),
        columns.to_vec(),
    );
    let bytes =
        tokio::task::spawn_blocking(move || write(&dir, &file_name, &owner, &columns, &rows))
            .await
            .map_err(|e| ToolError::Internal(e.to_string()))?
            .map_err(|e| ToolError::Upstream {
                message: format!("the Parquet file could not be written: {e}; check output_dir"),
                transient: false,
            })?;
    Ok(OutputFile {
        uri: format!("{URI_PREFIX}{name}"),
        name,
        bytes,
        mime_type: MIME.to_owned(),
    })
}

/// Writes `rows` under `columns` to `dir/name` as Parquet for `owner`; returns the file's size.
/// Blocking.
fn write(
    dir: &Path,
    name: &str,
    owner: &Principal,
    columns: &[Column],
    rows: &[Vec<Value>],
) -> Result<u64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let store = OutputStore::of(dir);
    remove_expired(dir);
    store.forget_expired();
    let batch = parquet::batch(columns, rows)?;
    let path = dir.join(name);
    // A new file only: an existing name (or a link planted under it) is never written through.
    // Readable by this user only, since results may hold what other users must not see.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let handle = file.try_clone().map_err(|e| e.to_string())?;
    let written =
        parquet::write(file, &batch).and_then(|()| handle.metadata().map_err(|e| e.to_string()));
    let metadata = match written {
        Ok(metadata) => metadata,
        Err(error) => {
            let _ = std::fs::remove_file(&path);
            return Err(error);
        }
    };
    let identity = Identity::of(&metadata);
    store.add(name, owner.clone(), identity)?;
    Ok(identity.bytes)
}

/// What a written file was on disk, to recognise it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    bytes: u64,
}

impl Identity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Identity {
            device: metadata.dev(),
            inode: metadata.ino(),
            bytes: metadata.len(),
        }
    }

    fn same_file(&self, metadata: &std::fs::Metadata) -> bool {
        metadata.dev() == self.device && metadata.ino() == self.inode
    }
}

struct Written {
    owner: Principal,
    identity: Identity,
    at: std::time::Instant,
}

/// The files this process wrote in one folder, oldest first.
struct OutputStore {
    dir: PathBuf,
    quota: std::sync::atomic::AtomicU64,
    files: Mutex<Files>,
}

#[derive(Default)]
struct Files {
    by_name: HashMap<String, Written>,
    order: VecDeque<String>,
    total: u64,
}

impl OutputStore {
    /// The store of `dir`, shared by the tool that writes and the provider that reads, which
    /// are built apart.
    fn of(dir: &Path) -> Arc<OutputStore> {
        static STORES: OnceLock<Mutex<HashMap<PathBuf, Arc<OutputStore>>>> = OnceLock::new();
        let mut stores = STORES
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(stores.entry(dir.to_path_buf()).or_insert_with(|| {
            Arc::new(OutputStore {
                dir: dir.to_path_buf(),
                quota: std::sync::atomic::AtomicU64::new(DEFAULT_QUOTA_BYTES),
                files: Mutex::default(),
            })
        }))
    }

    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn quota(&self) -> u64 {
        self.quota.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records a new file, deleting the oldest ones while the total passes the quota.
    fn add(&self, name: &str, owner: Principal, identity: Identity) -> Result<(), String> {
        let quota = self.quota();
        if identity.bytes > quota {
            self.delete(name, identity);
            return Err(format!(
                "the result file would take {} bytes, more than the output folder's quota of {quota} bytes (output_max_bytes); ask for fewer rows or columns",
                identity.bytes
            ));
        }
        let mut files = self.files();
        while files.total + identity.bytes > quota {
            let Some(oldest) = files.order.pop_front() else {
                break;
            };
            if let Some(old) = files.by_name.remove(&oldest) {
                files.total -= old.identity.bytes;
                tracing::info!(
                    bytes = old.identity.bytes,
                    "deleted the oldest result file to stay within the output quota"
                );
                self.delete(&oldest, old.identity);
            }
        }
        files.total += identity.bytes;
        files.order.push_back(name.to_owned());
        files.by_name.insert(
            name.to_owned(),
            Written {
                owner,
                identity,
                at: std::time::Instant::now(),
            },
        );
        Ok(())
    }

    /// Deletes `name` if it is still the file that was written there.
    fn delete(&self, name: &str, identity: Identity) {
        let path = self.dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && identity.same_file(&m)) {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Forgets files past their keeping time (the folder sweep deletes them).
    fn forget_expired(&self) {
        let mut files = self.files();
        while let Some(oldest) = files.order.front().cloned() {
            let expired = files
                .by_name
                .get(&oldest)
                .is_none_or(|w| w.at.elapsed() > KEEP_FOR);
            if !expired {
                break;
            }
            files.order.pop_front();
            if let Some(old) = files.by_name.remove(&oldest) {
                files.total -= old.identity.bytes;
            }
        }
    }

    /// The identity of `name` if this process wrote it for `principal`.
    fn owned_by(&self, name: &str, principal: &Principal) -> Option<Identity> {
        self.files()
            .by_name
            .get(name)
            .filter(|w| w.owner == *principal && w.at.elapsed() <= KEEP_FOR)
            .map(|w| w.identity)
    }

    /// Reads `name`, refusing anything but the very file that was written.
    fn read(&self, name: &str, identity: Identity) -> std::io::Result<Vec<u8>> {
        use std::io::Read as _;
        let path = self.dir.join(name);
        let refused = || std::io::Error::new(std::io::ErrorKind::NotFound, "not our file");
        let link = std::fs::symlink_metadata(&path)?;
        if !link.is_file() || !identity.same_file(&link) {
            return Err(refused());
        }
        // Checked again on the open file: the name may have been swapped in between.
        let mut file = std::fs::File::open(&path)?;
        let opened = file.metadata()?;
        if !opened.is_file() || !identity.same_file(&opened) {
            return Err(refused());
        }
        let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
        file.by_ref()
            .take(identity.bytes.max(opened.len()))
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// How long a result file is kept: long enough to be read, short enough not to pile up.
const KEEP_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes result files older than [`KEEP_FOR`]; only files this server names, nothing else.
fn remove_expired(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("datamcp-") && name.ends_with(".parquet");
        let expired = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > KEEP_FOR);
        if ours && expired {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Serves the files this process wrote in the output folder as resources, each to its owner.
pub struct OutputFiles {
    store: Arc<OutputStore>,
}

impl OutputFiles {
    /// Files in `dir`, which together may take `quota` bytes.
    pub fn new(dir: PathBuf, quota: u64) -> Self {
        let store = OutputStore::of(&dir);
        store
            .quota
            .store(quota, std::sync::atomic::Ordering::Relaxed);
        OutputFiles { store }
    }
}

impl ResourceProvider for OutputFiles {
    fn resources(&self) -> Vec<ResourceInfo> {
        Vec::new()
    }

    fn templates(&self) -> Vec<ResourceTemplateInfo> {
        vec![ResourceTemplateInfo {
            uri_template: format!("{URI_PREFIX}{{file}}"),
            name: "query-output".to_owned(),
            description: "A query result written as a file (sql_query with format parquet)"
                .to_owned(),
            mime_type: MIME.to_owned(),
        }]
    }

    fn read<'a>(
        &'a self,
        uri: &'a str,
        _registry: &'a Registry,
        invocation: &'a Invocation,
    ) -> Option<BoxFuture<'a, Result<ResourceContent, ToolError>>> {
        let name = uri.strip_prefix(URI_PREFIX)?;
        let principal = &invocation.principal;
        Some(Box::pin(async move {
            // Only plain file names the server wrote: no paths, no way out of the folder.
            let plain = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && !name.starts_with('.');
            // One answer for missing, foreign and another caller's files: which exist is
            // nobody else's business.
            let missing = || ToolError::InvalidArguments(format!("no output file '{name}'"));
            if !plain {
                return Err(missing());
            }
            let identity = self.store.owned_by(name, principal).ok_or_else(missing)?;
            let store = Arc::clone(&self.store);
            let file = name.to_owned();
            let bytes = tokio::task::spawn_blocking(move || store.read(&file, identity))
                .await
                .map_err(|e| ToolError::Internal(e.to_string()))?
                .map_err(|error| {
                    tracing::warn!(%error, "an output file changed on disk since it was written; not serving it");
                    missing()
                })?;
            Ok(ResourceContent::Blob {
                bytes,
                mime_type: MIME.to_owned(),
            })
        }))
    }
}
