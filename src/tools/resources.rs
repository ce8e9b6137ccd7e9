//! Resources that tool kinds offer besides their tools (e.g. table schemas), kept in the
//! registry next to the tools so the protocol layer can serve them without knowing any kind.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::Registry;
use super::context::Invocation;
use super::result::ToolError;

/// A concrete resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// Its URI.
    pub uri: String,
    /// Short name.
    pub name: String,
    /// What it holds.
    pub description: String,
    /// MIME type of its content.
    pub mime_type: String,
}

/// A family of resources addressed by an RFC 6570 URI template.
#[derive(Debug, Clone)]
pub struct ResourceTemplateInfo {
    /// The template, e.g. `datamcp://warehouse/{warehouse}/table/{table}`.
    pub uri_template: String,
    /// Short name.
    pub name: String,
    /// What its resources hold.
    pub description: String,
    /// MIME type of their content.
    pub mime_type: String,
}

/// What reading a resource gives.
#[derive(Debug, Clone)]
pub enum ResourceContent {
    /// Text, e.g. JSON.
    Text {
        /// The text.
        text: String,
        /// Its MIME type.
        mime_type: String,
    },
    /// Bytes, e.g. a Parquet file.
    Blob {
        /// The bytes.
        bytes: Vec<u8>,
        /// Their MIME type.
        mime_type: String,
    },
}

/// Offers and reads resources; a kind registers one next to its tools.
pub trait ResourceProvider: Send + Sync {
    /// Resources to list.
    fn resources(&self) -> Vec<ResourceInfo>;
    /// Templates to list.
    fn templates(&self) -> Vec<ResourceTemplateInfo>;
    /// Reads `uri` for the caller of `invocation` if it is this provider's (`None` otherwise),
    /// usually by calling a tool through `registry` (`Registry::call_internal`) with
    /// `invocation`, so the same validation, policies, audit and cancellation apply.
    fn read<'a>(
        &'a self,
        uri: &'a str,
        registry: &'a Registry,
        invocation: &'a Invocation,
    ) -> Option<BoxFuture<'a, Result<ResourceContent, ToolError>>>;
}

/// Providers in registration order.
pub type Providers = Vec<Arc<dyn ResourceProvider>>;
