//! One agent connection on the mutual-TLS listener: the agent id comes from
//! the client certificate, batches go to the pipeline, acknowledgements come
//! back only after the pipeline committed them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, ReadHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use wire::{Message, Rejection};

use crate::ca::certificate_fingerprint;
use crate::connections::Connections;
use crate::pipeline::{AgentRef, BatchOrder, BatchReply, PipelineError, PipelineHandle};
use crate::registry::{Agent, Registry};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest gap between two last-seen updates written for one connection.
const TOUCH_EVERY: Duration = Duration::from_secs(5);
/// Replies one connection can have queued for its acknowledgement task, which bounds its
/// batches in the pipeline to this plus two. Agents keep their own, smaller window.
const MAX_PENDING_BATCHES: usize = 16;

/// State shared by every agent connection.
pub struct SessionContext {
    pub registry: Registry,
    pub pipeline: PipelineHandle,
    pub connections: Arc<Connections>,
    pub max_frame_bytes: usize,
    /// Time without any message after which the connection is closed.
    pub idle_timeout: Duration,
}

/// Accepts agent connections until the task is dropped.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, context: Arc<SessionContext>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "failed to accept an agent connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let context = context.clone();
        tokio::spawn(async move { handle(tcp, peer, acceptor, context).await });
    }
}

async fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    context: Arc<SessionContext>,
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            tracing::warn!(peer = %peer, error = %err, "agent connection rejected: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::warn!(peer = %peer, "agent connection rejected: TLS handshake timed out");
            return;
        }
    };

    let agent = match identify(&stream, &context.registry).await {
        Ok(agent) => agent,
        Err((code, message)) => {
            tracing::warn!(peer = %peer, code, reason = %message, "agent connection rejected");
            let mut stream = stream;
            let rejection = Message::Rejection(Rejection {
                code: code.into(),
                message,
            });
            let _ = wire::write_message(&mut stream, &rejection, context.max_frame_bytes).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    run(stream, peer, agent, context).await;
}

/// Maps the verified client certificate to an enrolled, not removed agent.
async fn identify(
    stream: &TlsStream<TcpStream>,
    registry: &Registry,
) -> Result<Agent, (&'static str, String)> {
    let (_, session) = stream.get_ref();
    let Some(leaf) = session.peer_certificates().and_then(|certs| certs.first()) else {
        return Err(("no_certificate", "no client certificate".into()));
    };
    let fingerprint = certificate_fingerprint(leaf.as_ref());
    let registry = registry.clone();
    let found = tokio::task::spawn_blocking(move || registry.by_certificate(&fingerprint)).await;
    match found {
        Ok(Ok(Some(agent))) if agent.removed => Err((
            "agent_removed",
            format!("agent `{}` was removed from this manager", agent.id),
        )),
        Ok(Ok(Some(agent))) => Ok(agent),
        Ok(Ok(None)) => Err((
            "unknown_certificate",
            "the client certificate belongs to no enrolled agent".into(),
        )),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "agent registry lookup failed");
            Err((
                "internal_error",
                "the manager failed to look the agent up".into(),
            ))
        }
        Err(err) => Err(("internal_error", err.to_string())),
    }
}

async fn run(
    stream: TlsStream<TcpStream>,
    peer: SocketAddr,
    agent: Agent,
    context: Arc<SessionContext>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (outgoing, mut queue) = mpsc::channel::<Message>(64);
    let token = context.connections.register(&agent.id, outgoing.clone());
    blocking(&context.registry, {
        let (id, address) = (agent.id.clone(), peer.to_string());
        move |r| r.mark_connected(&id, &address)
    })
    .await;
    tracing::info!(agent_id = %agent.id, name = %agent.name, peer = %peer, "agent connected");

    let max_frame = context.max_frame_bytes;
    let writer_task = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            if wire::write_message(&mut writer, &message, max_frame)
                .await
                .is_err()
            {
                break;
            }
            if matches!(message, Message::Rejection(_)) {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });

    let agent_ref = AgentRef {
        id: agent.id.clone(),
        name: agent.name.clone(),
        ip: peer.ip().to_string(),
    };
    let reason = read_loop(&mut reader, &agent_ref, &outgoing, &context).await;

    // The registry of connections contains a sender too: it goes first, so that
    // the writer task sees its queue close and ends.
    let current = context.connections.unregister(&agent.id, token);
    drop(outgoing);
    let _ = writer_task.await;

    if current {
        blocking(&context.registry, {
            let id = agent.id.clone();
            move |r| r.mark_disconnected(&id)
        })
        .await;
    }
    tracing::info!(agent_id = %agent.id, peer = %peer, reason = %reason, "agent disconnected");
}

/// Reads messages until the connection ends or a batch fails to commit. Batches go to the
/// pipeline as they arrive, and a task of their own sends each acknowledgement, in order,
/// after its batch is committed, so that the next batches are decoded and analysed while
/// earlier ones are being committed.
async fn read_loop(
    reader: &mut ReadHalf<TlsStream<TcpStream>>,
    agent: &AgentRef,
    outgoing: &mpsc::Sender<Message>,
    context: &SessionContext,
) -> String {
    let (pending, replies) = mpsc::channel(MAX_PENDING_BATCHES);
    let order = BatchOrder::default();
    let mut acks = tokio::spawn(send_acks(replies, outgoing.clone()));
    tokio::select! {
        reason = read_messages(reader, agent, outgoing, context, (pending, order)) => reason,
        finished = &mut acks => finished
            .unwrap_or_else(|err| format!("acknowledgement task failed: {err}")),
    }
}

/// Sends the acknowledgement of each batch once the pipeline committed it; returns why it
/// stopped.
async fn send_acks(
    mut replies: mpsc::Receiver<BatchReply>,
    outgoing: mpsc::Sender<Message>,
) -> String {
    while let Some(reply) = replies.recv().await {
        let ack = match reply.await {
            Ok(Ok(ack)) => ack,
            Ok(Err(err)) => return format!("batch not stored: {err}"),
            Err(_) => return format!("batch not stored: {}", PipelineError::Stopped),
        };
        if outgoing.send(Message::Ack(ack)).await.is_err() {
            return "connection closed".into();
        }
    }
    "connection closed".into()
}

async fn read_messages(
    reader: &mut ReadHalf<TlsStream<TcpStream>>,
    agent: &AgentRef,
    outgoing: &mpsc::Sender<Message>,
    context: &SessionContext,
    (pending, order): (mpsc::Sender<BatchReply>, BatchOrder),
) -> String {
    let mut last_touch = Instant::now();
    loop {
        let read = tokio::time::timeout(
            context.idle_timeout,
            wire::read_message(reader, context.max_frame_bytes),
        );
        let message = match read.await {
            Err(_) => return format!("no message for {:?}", context.idle_timeout),
            Ok(Ok(Some(message))) => message,
            Ok(Ok(None)) => return "closed by the agent".into(),
            Ok(Err(err)) => {
                let reason = format!("invalid frame: {err}");
                let rejection = Rejection {
                    code: "protocol_error".into(),
                    message: reason.clone(),
                };
                let _ = outgoing.send(Message::Rejection(rejection)).await;
                return reason;
            }
        };

        match message {
            Message::Keepalive(keepalive) => {
                if !still_enrolled(&context.registry, agent, keepalive).await {
                    let message = format!("agent `{}` was removed from this manager", agent.id);
                    let rejection = Rejection {
                        code: "agent_removed".into(),
                        message,
                    };
                    let _ = outgoing.send(Message::Rejection(rejection)).await;
                    return "agent removed".into();
                }
                last_touch = Instant::now();
            }
            Message::EventBatch(batch) => {
                let reply = match context.pipeline.enqueue(agent.clone(), batch, &order).await {
                    Ok(reply) => reply,
                    Err(err) => return format!("batch not stored: {err}"),
                };
                if pending.send(reply).await.is_err() {
                    return "connection closed".into();
                }
                if last_touch.elapsed() >= TOUCH_EVERY {
                    let id = agent.id.clone();
                    blocking(&context.registry, move |r| r.touch(&id)).await;
                    last_touch = Instant::now();
                }
            }
            other => {
                let reason = format!("unexpected {:?} message", other.kind());
                let rejection = Rejection {
                    code: "protocol_error".into(),
                    message: reason.clone(),
                };
                let _ = outgoing.send(Message::Rejection(rejection)).await;
                return reason;
            }
        }
    }
}

/// Records a keepalive; false when the agent was removed since it connected.
async fn still_enrolled(registry: &Registry, agent: &AgentRef, keepalive: wire::Keepalive) -> bool {
    let registry = registry.clone();
    let id = agent.id.clone();
    let updated = tokio::task::spawn_blocking(move || {
        registry.keepalive(&id, &keepalive.version, keepalive.dropped_events)
    })
    .await;
    match updated {
        Ok(Ok(enrolled)) => enrolled,
        Ok(Err(err)) => {
            tracing::error!(agent_id = %agent.id, error = %err, "agent registry update failed");
            true
        }
        Err(err) => {
            tracing::error!(agent_id = %agent.id, error = %err, "agent registry task failed");
            true
        }
    }
}

/// Runs a registry update off the async runtime, logging a failure.
async fn blocking(
    registry: &Registry,
    f: impl FnOnce(&Registry) -> Result<(), crate::registry::RegistryError> + Send + 'static,
) {
    let registry = registry.clone();
    match tokio::task::spawn_blocking(move || f(&registry)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "agent registry update failed"),
        Err(err) => tracing::error!(error = %err, "agent registry task failed"),
    }
}
