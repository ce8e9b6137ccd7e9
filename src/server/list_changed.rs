//! `notifications/tools/list_changed`: every connected client hears when the tool set changes.
//!
//! Sessions of 2025-era clients (stdio, each Streamable HTTP session, each legacy SSE session)
//! register their peer when they finish initializing; one task per server waits for the
//! registry's generation to move and tells every peer still connected. Clients of 2026-07-28
//! ask on a `subscriptions/listen` stream instead, served by [`listen`].

use std::sync::{Mutex, OnceLock};

use rmcp::service::SubscriptionContext;
use rmcp::{Peer, RoleServer};
use tokio::sync::watch;

/// The peers to tell, and the task that tells them.
pub struct Listeners {
    peers: std::sync::Arc<Mutex<Vec<Peer<RoleServer>>>>,
    generation: Mutex<Option<watch::Receiver<u64>>>,
    started: OnceLock<()>,
}

impl Listeners {
    /// Listeners following `generation`; the task starts with the first session.
    pub fn new(generation: watch::Receiver<u64>) -> Self {
        Listeners {
            peers: Default::default(),
            generation: Mutex::new(Some(generation)),
            started: OnceLock::new(),
        }
    }

    /// Tells `peer` about every later change, for as long as its session lasts.
    pub fn add(&self, peer: Peer<RoleServer>) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|peer| !peer.is_transport_closed());
        peers.push(peer);
        drop(peers);
        self.started.get_or_init(|| {
            let generation = self
                .generation
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(generation) = generation {
                tokio::spawn(notify_on_change(generation, self.peers.clone()));
            }
        });
    }
}

/// Until the registry is dropped: on each change, one notification to each connected peer.
async fn notify_on_change(
    mut generation: watch::Receiver<u64>,
    peers: std::sync::Arc<Mutex<Vec<Peer<RoleServer>>>>,
) {
    while generation.changed().await.is_ok() {
        let connected: Vec<Peer<RoleServer>> = {
            let mut peers = peers.lock().unwrap_or_else(|p| p.into_inner());
            peers.retain(|peer| !peer.is_transport_closed());
            peers.clone()
        };
        tracing::info!(
            sessions = connected.len(),
            "tool set changed; telling the clients"
        );
        for peer in connected {
            // Each on its own, so a client that reads slowly holds up nobody else.
            tokio::spawn(async move {
                if let Err(error) = peer.notify_tool_list_changed().await {
                    tracing::debug!(%error, "tools/list_changed not delivered");
                }
            });
        }
    }
}

/// Serves one `subscriptions/listen` stream until the client ends it.
pub async fn listen(mut generation: watch::Receiver<u64>, context: SubscriptionContext) {
    if context.accepted().tools_list_changed != Some(true) {
        context.cancelled().await;
        return;
    }
    loop {
        tokio::select! {
            () = context.cancelled() => return,
            changed = generation.changed() => {
                if changed.is_err() {
                    return;
                }
                if let Err(error) = context.sink().notify_tool_list_changed().await {
                    tracing::debug!(%error, "tools/list_changed not delivered on a subscription");
                    return;
                }
            }
        }
    }
}
