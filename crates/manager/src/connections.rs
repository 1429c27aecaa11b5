//! Live agent connections, so that the pipeline can send an agent a command.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::mpsc;
use wire::Message;

/// The outgoing queue of each connected agent; a newer connection of the
/// same agent replaces the older one.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    senders: Mutex<HashMap<String, (u64, mpsc::Sender<Message>)>>,
}

impl Connections {
    /// Registers a connection and returns its token for [`Connections::unregister`].
    pub fn register(&self, agent_id: &str, sender: mpsc::Sender<Message>) -> u64 {
        let token = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(agent_id.to_string(), (token, sender));
        token
    }

    /// Removes the connection unless a newer one replaced it; true when removed.
    pub fn unregister(&self, agent_id: &str, token: u64) -> bool {
        let mut senders = self.lock();
        if senders.get(agent_id).is_some_and(|(t, _)| *t == token) {
            senders.remove(agent_id);
            return true;
        }
        false
    }

    /// Queues a message for a connected agent; false when it is not connected
    /// or its queue is full.
    pub fn send(&self, agent_id: &str, message: Message) -> bool {
        let senders = self.lock();
        match senders.get(agent_id) {
            Some((_, sender)) => sender.try_send(message).is_ok(),
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, mpsc::Sender<Message>)>> {
        self.senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
