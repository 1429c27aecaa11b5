//! Live agent connections, so that the pipeline can send an agent a command, and the
//! queue of commands for agents that are not connected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::mpsc;
use wire::{ActiveResponseCommand, Message};

use crate::ar_queue::CommandQueue;

/// The outgoing queue of each connected agent; a newer connection of the
/// same agent replaces the older one.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    senders: Mutex<HashMap<String, (u64, mpsc::Sender<Message>)>>,
    offline: Option<CommandQueue>,
}

/// Outcome of sending an active-response command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued on the agent's connection.
    Sent,
    /// Kept for an agent that is not connected, sent when it connects.
    Queued,
    /// Not sent: the agent is not connected and there is no queue, or its queue is full.
    NotSent,
}

impl Connections {
    /// Keeps commands for agents that are not connected in `queue`.
    pub fn with_offline_queue(queue: CommandQueue) -> Connections {
        Connections {
            offline: Some(queue),
            ..Connections::default()
        }
    }

    /// Registers a connection and returns its token for [`Connections::unregister`].
    /// Commands queued while the agent was away go out first.
    pub fn register(&self, agent_id: &str, sender: mpsc::Sender<Message>) -> u64 {
        let token = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut senders = self.lock();
        self.send_queued(agent_id, &sender);
        senders.insert(agent_id.to_string(), (token, sender));
        token
    }

    /// Sends an active-response command, or queues it when the agent is not connected.
    pub fn send_command(&self, agent_id: &str, command: ActiveResponseCommand) -> Delivery {
        let senders = self.lock();
        if let Some((_, sender)) = senders.get(agent_id) {
            return match sender.try_send(Message::ActiveResponseCommand(command)) {
                Ok(()) => Delivery::Sent,
                Err(_) => Delivery::NotSent,
            };
        }
        let Some(queue) = &self.offline else {
            return Delivery::NotSent;
        };
        match queue.push(agent_id, &command) {
            Ok(()) => Delivery::Queued,
            Err(err) => {
                tracing::error!(agent_id, path = %command.path, error = %err, "failed to queue a quarantine command");
                Delivery::NotSent
            }
        }
    }

    /// Sends the commands queued for `agent_id` on its new connection; the caller holds
    /// the senders' lock, so no command is queued meanwhile.
    fn send_queued(&self, agent_id: &str, sender: &mpsc::Sender<Message>) {
        let Some(queue) = &self.offline else { return };
        let queued = match queue.take(agent_id) {
            Ok(queued) => queued,
            Err(err) => {
                tracing::error!(agent_id, error = %err, "failed to read queued quarantine commands");
                return;
            }
        };
        for item in queued {
            let (path, command_id) = (item.command.path.clone(), item.command.command_id.clone());
            match sender.try_send(Message::ActiveResponseCommand(item.command)) {
                Ok(()) => {
                    tracing::info!(
                        agent_id,
                        path,
                        command_id,
                        waited_secs = item.waited_secs,
                        "queued quarantine sent"
                    )
                }
                Err(_) => {
                    tracing::warn!(
                        agent_id,
                        path,
                        command_id,
                        "queued quarantine not sent: connection queue full"
                    )
                }
            }
        }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, mpsc::Sender<Message>)>> {
        self.senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn command(path: &str) -> ActiveResponseCommand {
        ActiveResponseCommand {
            command_id: format!("id-{path}"),
            action: "quarantine".into(),
            path: path.into(),
            rule_id: None,
            alert_id: None,
        }
    }

    #[test]
    fn command_for_offline_agent_goes_out_on_connect() {
        let dir = tempfile::tempdir().unwrap();
        let queue =
            CommandQueue::open(&dir.path().join("manager.db"), Duration::from_secs(60)).unwrap();
        let connections = Connections::with_offline_queue(queue);
        assert_eq!(
            connections.send_command("001", command("/a")),
            Delivery::Queued
        );

        let (sender, mut receiver) = mpsc::channel(8);
        connections.register("001", sender);
        let Ok(Message::ActiveResponseCommand(sent)) = receiver.try_recv() else {
            panic!("the queued command was not sent on connect");
        };
        assert_eq!(sent, command("/a"));

        assert_eq!(
            connections.send_command("001", command("/b")),
            Delivery::Sent
        );
        assert!(receiver.try_recv().is_ok());
    }

    #[test]
    fn without_queue_offline_command_is_not_sent() {
        let connections = Connections::default();
        assert_eq!(
            connections.send_command("001", command("/a")),
            Delivery::NotSent
        );
    }
}
