//! Frees the pipeline's large values (event batches, alert documents) on a thread of its
//! own. Dropping a `serde_json::Value` walks and frees every node, which took about 5 % of
//! the pipeline thread's time; here it overlaps with the next commit.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

/// Values waiting to be freed; when the queue is full they are freed in place.
const QUEUE: usize = 16;

type Garbage = Box<dyn Send>;

pub(super) struct Discard {
    sender: Option<SyncSender<Garbage>>,
}

impl Discard {
    /// Starts the thread; when it cannot start, values are freed where they are released.
    pub(super) fn start() -> Discard {
        let (sender, receiver) = sync_channel::<Garbage>(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("iocwatch-discard".into())
            .spawn(move || receiver.into_iter().for_each(drop));
        match spawned {
            Ok(_) => Discard {
                sender: Some(sender),
            },
            Err(error) => {
                tracing::warn!(%error, "failed to start the thread that frees pipeline values; the pipeline frees them itself");
                Discard { sender: None }
            }
        }
    }

    /// Hands `value` to the thread to be dropped there.
    pub(super) fn release<T: Send + 'static>(&self, value: T) {
        let Some(sender) = &self.sender else { return };
        match sender.try_send(Box::new(value)) {
            Ok(()) => {}
            Err(TrySendError::Full(value) | TrySendError::Disconnected(value)) => drop(value),
        }
    }
}
