//! The sender: connects with the agent's certificate, sends spooled events
//! in order with a window of batches in flight, deletes them on the
//! manager's acknowledgement, sends keepalives and reconnects with backoff.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use serde_json::json;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use wire::{ActiveResponseCommand, EventBatch, Keepalive, Message, WireError};

use crate::quarantine::Quarantine;
use crate::{tls, LinkConfig, Shared};

/// Batches sent before the first acknowledgement is awaited.
const WINDOW_BATCHES: usize = 4;
/// Time the manager has to acknowledge a batch before the connection is dropped.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("failed to connect to `{address}`")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out connecting to `{0}`")]
    ConnectTimeout(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Spool(#[from] crate::SpoolError),
    #[error("the manager closed the connection")]
    Closed,
    #[error("the manager rejected this agent ({code}): {message}")]
    Rejected { code: String, message: String },
    #[error("no acknowledgement for batch {0} within {ACK_TIMEOUT:?}")]
    AckTimeout(u64),
    #[error("acknowledgement for batch {got} while batch {expected} was the oldest in flight")]
    AckOutOfOrder { got: u64, expected: u64 },
}

pub(crate) struct Sender {
    config: LinkConfig,
    tls: Arc<ClientConfig>,
    shared: Arc<Shared>,
    quarantine: Option<Arc<Quarantine>>,
}

struct InFlight {
    batch: u64,
    last_seq: u64,
    sent_at: Instant,
}

type Writer = WriteHalf<TlsStream<TcpStream>>;

impl Sender {
    pub(crate) fn new(config: LinkConfig, tls: Arc<ClientConfig>, shared: Arc<Shared>) -> Sender {
        let quarantine = config
            .quarantine
            .clone()
            .map(|q| Arc::new(Quarantine::new(q)));
        Sender {
            config,
            tls,
            shared,
            quarantine,
        }
    }

    fn address(&self) -> String {
        self.config
            .section
            .address
            .clone()
            .unwrap_or_else(|| self.config.identity.events_address())
    }

    /// Connects, sends and reconnects until the task is cancelled.
    pub(crate) async fn run(self) {
        let max_backoff = Duration::from_secs(self.config.section.reconnect_max_secs.max(1));
        let mut backoff = FIRST_RETRY;
        loop {
            let mut connected = false;
            let result = self.session(&mut connected).await;
            self.shared.stats.connected.store(false, Ordering::Relaxed);

            let address = self.address();
            match &result {
                Err(SessionError::Rejected { .. }) => {
                    tracing::error!(%address, error = %result.as_ref().unwrap_err(), "manager rejected the connection");
                    backoff = max_backoff;
                }
                Err(err) if connected => {
                    tracing::warn!(%address, error = %err, "connection to the manager lost, reconnecting");
                    backoff = FIRST_RETRY;
                }
                Err(err) => {
                    tracing::warn!(%address, error = %err, retry_in = ?backoff, "cannot reach the manager")
                }
                Ok(()) => backoff = FIRST_RETRY,
            }
            tokio::time::sleep(jittered(backoff)).await;
            backoff = (backoff * 2).min(max_backoff);
            self.shared.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn connect(&self) -> Result<TlsStream<TcpStream>, SessionError> {
        let address = self.address();
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address))
            .await
            .map_err(|_| SessionError::ConnectTimeout(address.clone()))?
            .map_err(|source| SessionError::Connect {
                address: address.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);

        let host = address
            .rsplit_once(':')
            .map_or(address.as_str(), |(host, _)| host);
        let connector = TlsConnector::from(self.tls.clone());
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            connector.connect(tls::server_name(host)?, tcp),
        )
        .await
        .map_err(|_| SessionError::ConnectTimeout(address.clone()))?
        .map_err(|source| SessionError::Connect { address, source })
    }

    async fn session(&self, connected: &mut bool) -> Result<(), SessionError> {
        let stream = self.connect().await?;
        let (mut reader, mut writer) = tokio::io::split(stream);

        let max_frame = wire::DEFAULT_MAX_FRAME_BYTES;
        let (incoming_tx, mut incoming) = mpsc::channel(16);
        let reader_task = tokio::spawn(async move {
            loop {
                let message = wire::read_message(&mut reader, max_frame).await;
                let done = !matches!(message, Ok(Some(_)));
                if incoming_tx.send(message).await.is_err() || done {
                    break;
                }
            }
        });
        let result = self.exchange(&mut writer, &mut incoming, connected).await;
        reader_task.abort();
        let _ = writer.shutdown().await;
        result
    }

    async fn exchange(
        &self,
        writer: &mut Writer,
        incoming: &mut mpsc::Receiver<Result<Option<Message>, WireError>>,
        connected: &mut bool,
    ) -> Result<(), SessionError> {
        self.send_keepalive(writer).await?;
        *connected = true;
        self.shared.stats.connected.store(true, Ordering::Relaxed);
        tracing::info!(address = %self.address(), agent_id = %self.config.identity.info.agent_id, "connected to the manager");

        let keepalive_every = Duration::from_secs(self.config.section.keepalive_secs.max(1));
        let mut keepalive =
            tokio::time::interval_at(Instant::now() + keepalive_every, keepalive_every);
        let mut inflight: VecDeque<InFlight> = VecDeque::new();
        let (mut cursor, mut next_batch) = (0u64, 1u64);

        loop {
            self.fill_window(writer, &mut inflight, &mut cursor, &mut next_batch)
                .await?;
            let ack_deadline = inflight.front().map(|f| f.sent_at + ACK_TIMEOUT);

            tokio::select! {
                message = incoming.recv() => match message {
                    Some(Ok(Some(message))) => self.handle(message, &mut inflight)?,
                    Some(Ok(None)) | None => return Err(SessionError::Closed),
                    Some(Err(err)) => return Err(err.into()),
                },
                _ = keepalive.tick() => self.send_keepalive(writer).await?,
                () = self.shared.wake.notified() => {}
                () = sleep_until_opt(ack_deadline) => {
                    let batch = inflight.front().map_or(0, |f| f.batch);
                    return Err(SessionError::AckTimeout(batch));
                }
            }
        }
    }

    async fn fill_window(
        &self,
        writer: &mut Writer,
        inflight: &mut VecDeque<InFlight>,
        cursor: &mut u64,
        next_batch: &mut u64,
    ) -> Result<(), SessionError> {
        let max_events = self.config.section.batch_max_events.max(1);
        let max_bytes = wire::DEFAULT_MAX_FRAME_BYTES / 2;
        while inflight.len() < WINDOW_BATCHES {
            let events = self
                .shared
                .spool()
                .read_after(*cursor, max_events, max_bytes)?;
            let Some(last) = events.last() else { break };
            let last_seq = last.id.seq;

            let batch = EventBatch {
                batch: *next_batch,
                events,
            };
            let message = Message::EventBatch(batch);
            wire::write_message(writer, &message, wire::DEFAULT_MAX_FRAME_BYTES).await?;

            inflight.push_back(InFlight {
                batch: *next_batch,
                last_seq,
                sent_at: Instant::now(),
            });
            *cursor = last_seq;
            *next_batch += 1;
            self.shared
                .stats
                .sent_batches
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn handle(
        &self,
        message: Message,
        inflight: &mut VecDeque<InFlight>,
    ) -> Result<(), SessionError> {
        match message {
            Message::Ack(ack) => {
                let Some(front) = inflight.pop_front() else {
                    return Err(SessionError::AckOutOfOrder {
                        got: ack.batch,
                        expected: 0,
                    });
                };
                if front.batch != ack.batch {
                    return Err(SessionError::AckOutOfOrder {
                        got: ack.batch,
                        expected: front.batch,
                    });
                }
                self.shared.spool().ack_through(front.last_seq)?;
                let acked = u64::from(ack.accepted) + u64::from(ack.duplicates);
                self.shared
                    .stats
                    .acked_events
                    .fetch_add(acked, Ordering::Relaxed);
                tracing::debug!(
                    batch = ack.batch,
                    accepted = ack.accepted,
                    duplicates = ack.duplicates,
                    "batch acknowledged"
                );
            }
            Message::Rejection(rejection) => {
                return Err(SessionError::Rejected {
                    code: rejection.code,
                    message: rejection.message,
                })
            }
            Message::ActiveResponseCommand(command) => self.start_action(command),
            other => {
                tracing::warn!(kind = ?other.kind(), "ignored an unexpected message from the manager")
            }
        }
        Ok(())
    }

    /// Carries out an active-response command off the runtime and spools its result.
    fn start_action(&self, command: ActiveResponseCommand) {
        tracing::info!(command_id = %command.command_id, action = %command.action, path = %command.path, "active response requested");
        let quarantine = self.quarantine.clone();
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let result = crate::quarantine::execute(quarantine.as_deref(), &command);
            let event = json!({ "active_response": result });
            match shared.spool().push(&event) {
                Ok(_) => shared.wake.notify_one(),
                Err(err) => {
                    tracing::error!(command_id = %command.command_id, error = %err, "failed to spool an active-response result")
                }
            }
        });
    }

    async fn send_keepalive(&self, writer: &mut Writer) -> Result<(), SessionError> {
        let (spooled, dropped) = {
            let spool = self.shared.spool();
            (spool.len(), spool.dropped())
        };
        let message = Message::Keepalive(Keepalive {
            version: self.config.version.clone(),
            name: self.config.identity.info.name.clone(),
            spooled_events: spooled,
            dropped_events: dropped,
        });
        wire::write_message(writer, &message, wire::DEFAULT_MAX_FRAME_BYTES).await?;
        Ok(())
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Adds up to a quarter of random delay so that agents cut off together do
/// not all reconnect in the same instant.
fn jittered(base: Duration) -> Duration {
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    let quarter = (base.as_millis() as u64 / 4).max(1);
    base + Duration::from_millis(random % quarter)
}
