//! Live agent connections, so that the pipeline can send an agent a command, and the
//! queue of commands for agents that are not connected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use wire::{ActiveResponseCommand, Message};

use crate::ar_queue::{CommandQueue, QueuedCommand};

/// The outgoing queue of each connected agent; a newer connection of the
/// same agent replaces the older one.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    senders: Mutex<HashMap<String, (u64, mpsc::Sender<Message>)>>,
    offline: Option<Arc<CommandQueue>>,
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
            offline: Some(Arc::new(queue)),
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
    /// the senders' lock, so no command is queued meanwhile. Commands that do not fit in
    /// the connection's queue go out from a task that waits for room, and go back to the
    /// offline queue if the connection closes first.
    fn send_queued(&self, agent_id: &str, sender: &mpsc::Sender<Message>) {
        let Some(queue) = &self.offline else { return };
        let queued = match queue.take(agent_id) {
            Ok(queued) => queued,
            Err(err) => {
                tracing::error!(agent_id, error = %err, "failed to read queued quarantine commands");
                return;
            }
        };
        let mut queued = queued.into_iter();
        while let Some(item) = queued.next() {
            let message = Message::ActiveResponseCommand(item.command.clone());
            if sender.try_send(message).is_ok() {
                log_sent(agent_id, &item);
                continue;
            }
            let rest: Vec<QueuedCommand> = std::iter::once(item).chain(queued).collect();
            send_later(queue, agent_id, sender, rest);
            return;
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

fn log_sent(agent_id: &str, item: &QueuedCommand) {
    tracing::info!(
        agent_id,
        path = %item.command.path,
        command_id = %item.command.command_id,
        waited_secs = item.waited_secs,
        "queued quarantine sent"
    );
}

/// Sends `rest` in order from a task that waits for room on the connection. Whatever is
/// not sent when the connection closes, or when no runtime can run the task, goes back to
/// the offline queue with its original age.
fn send_later(
    queue: &Arc<CommandQueue>,
    agent_id: &str,
    sender: &mpsc::Sender<Message>,
    rest: Vec<QueuedCommand>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        restore(queue, agent_id, &rest);
        return;
    };
    // NOTE: commands put back after the agent has already connected again wait for its
    // next connection.
    let (queue, agent_id, sender) = (Arc::clone(queue), agent_id.to_owned(), sender.clone());
    runtime.spawn(async move {
        for (sent, item) in rest.iter().enumerate() {
            let message = Message::ActiveResponseCommand(item.command.clone());
            if sender.send(message).await.is_err() {
                restore(&queue, &agent_id, &rest[sent..]);
                return;
            }
            log_sent(&agent_id, item);
        }
    });
}

fn restore(queue: &CommandQueue, agent_id: &str, commands: &[QueuedCommand]) {
    if let Err(err) = queue.restore(agent_id, commands) {
        tracing::error!(
            agent_id,
            commands = commands.len(),
            error = %err,
            "failed to keep unsent quarantine commands"
        );
    } else {
        tracing::info!(
            agent_id,
            commands = commands.len(),
            "quarantine commands kept for the next connection"
        );
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

    fn queue_with(paths: &[String]) -> (tempfile::TempDir, Connections) {
        let dir = tempfile::tempdir().unwrap();
        let queue =
            CommandQueue::open(&dir.path().join("manager.db"), Duration::from_secs(60)).unwrap();
        let connections = Connections::with_offline_queue(queue);
        for path in paths {
            assert_eq!(
                connections.send_command("001", command(path)),
                Delivery::Queued
            );
        }
        (dir, connections)
    }

    fn received_path(message: Option<Message>) -> String {
        match message {
            Some(Message::ActiveResponseCommand(sent)) => sent.path,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn overflow_commands_sent_in_order() {
        let paths: Vec<String> = (0..100).map(|i| format!("/f{i}")).collect();
        let (_dir, connections) = queue_with(&paths);

        let (sender, mut receiver) = mpsc::channel(4);
        connections.register("001", sender);

        for path in &paths {
            assert_eq!(&received_path(receiver.recv().await), path);
        }
    }

    #[tokio::test]
    async fn closed_connection_keeps_unsent_commands() {
        let paths: Vec<String> = (0..10).map(|i| format!("/f{i}")).collect();
        let (_dir, connections) = queue_with(&paths);

        let (sender, receiver) = mpsc::channel(4);
        let token = connections.register("001", sender);
        drop(receiver);
        connections.unregister("001", token);
        // The sending task finds the channel closed and puts the rest back in the queue.
        tokio::time::sleep(Duration::from_millis(50)).await;

        let (sender, mut receiver) = mpsc::channel(16);
        connections.register("001", sender);
        for path in &paths[4..] {
            assert_eq!(&received_path(receiver.recv().await), path);
        }
        assert!(receiver.try_recv().is_err());
    }

    #[test]
    fn no_runtime_keeps_unsent_commands() {
        let paths: Vec<String> = (0..5).map(|i| format!("/f{i}")).collect();
        let (_dir, connections) = queue_with(&paths);

        let (sender, mut receiver) = mpsc::channel(2);
        let token = connections.register("001", sender);
        assert_eq!(received_path(receiver.try_recv().ok()), "/f0");
        assert_eq!(received_path(receiver.try_recv().ok()), "/f1");
        assert!(receiver.try_recv().is_err());
        connections.unregister("001", token);

        let (sender, mut receiver) = mpsc::channel(8);
        connections.register("001", sender);
        for path in &paths[2..] {
            assert_eq!(&received_path(receiver.try_recv().ok()), path);
        }
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
