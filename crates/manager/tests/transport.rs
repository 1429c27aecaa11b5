//! Enrollment, mutual TLS and de-duplication between a real manager and a
//! real agent link over loopback, with a trivial analyser that turns each
//! event into one alert.

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::*;
use manager::{Registry, RunningServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolled_agent_events_become_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let identity = enroll(&server, "web-01", SECRET).await.unwrap();
    assert_eq!(identity.info.agent_id, "001");
    assert_eq!(identity.info.events_port, server.agents_addr.port());

    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let link = start_link(&agent_dir, identity);
    let sink = link.sink();
    for n in 0..10 {
        // The payload claims another agent; the manager must ignore that.
        sink.send(&json!({"path": format!("/tmp/f{n}"), "event": "added", "agent": {"id": "999"}}))
            .unwrap();
    }
    assert!(
        link.wait_drained(Duration::from_secs(10)),
        "events not acknowledged"
    );

    let alerts = alert_lines(dir.path());
    assert_eq!(alerts.len(), 10);
    assert!(alerts.iter().all(|a| a["agent"]["id"] == "001"));
    let paths: Vec<&str> = alerts
        .iter()
        .map(|a| a["syscheck"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths[0], "/tmp/f0");
    assert_eq!(paths[9], "/tmp/f9");

    let registry = Registry::open(&dir.path().join("manager/manager.db")).unwrap();
    let agent = registry.get("001").unwrap().unwrap();
    assert_eq!(agent.status, manager::AgentStatus::Active);
    assert_eq!(agent.version.as_deref(), Some("0.1.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let err = enroll(&server, "web-01", "not-the-secret")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, link::EnrollError::Rejected { code, .. } if code == "invalid_secret"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resent_events_are_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let identity = enroll(&server, "web-01", SECRET).await.unwrap();

    // Send the same spooled events twice: first through a link, then again by
    // copying the spool before the acknowledgement deleted them.
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    {
        let mut spool = link::Spool::open(&agent_dir.join("spool.db"), 1 << 20).unwrap();
        for n in 0..5 {
            spool
                .push(&json!({"path": format!("/f{n}"), "event": "added"}))
                .unwrap();
        }
    }
    std::fs::copy(agent_dir.join("spool.db"), dir.path().join("spool-copy.db")).unwrap();

    let link = start_link(&agent_dir, identity.clone());
    assert!(link.wait_drained(Duration::from_secs(10)));
    link.shutdown();
    assert_eq!(alert_lines(dir.path()).len(), 5);

    std::fs::remove_file(agent_dir.join("spool.db")).unwrap();
    let _ = std::fs::remove_file(agent_dir.join("spool.db-wal"));
    let _ = std::fs::remove_file(agent_dir.join("spool.db-shm"));
    std::fs::copy(dir.path().join("spool-copy.db"), agent_dir.join("spool.db")).unwrap();
    let link = start_link(&agent_dir, identity);
    assert!(link.wait_drained(Duration::from_secs(10)));
    assert_eq!(alert_lines(dir.path()).len(), 5, "a resend doubled alerts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_agent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let identity = enroll(&server, "web-01", SECRET).await.unwrap();
    let registry = Registry::open(&dir.path().join("manager/manager.db")).unwrap();
    registry.remove("001").unwrap();

    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let link = start_link(&agent_dir, identity);
    link.sink()
        .send(&json!({"path": "/x", "event": "added"}))
        .unwrap();
    assert!(
        !link.wait_drained(Duration::from_secs(2)),
        "a removed agent's events were accepted"
    );
    assert!(alert_lines(dir.path()).is_empty());
}

/// Resolves to a fixed certificate and key without checking that they belong
/// together, as an attacker holding a stolen certificate would.
#[derive(Debug)]
struct AnyCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for AnyCert {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Connects with `cert_pem`/`key_pem` (or none), sends one event batch and
/// returns the first message the manager sends back, or the error.
async fn raw_session(
    server: &RunningServer,
    ca_pem: &str,
    cert: Option<(&str, &str)>,
) -> Result<Option<wire::Message>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
            let signer = provider.key_provider.load_private_key(key).unwrap();
            let certified = rustls::sign::CertifiedKey::new(vec![cert], signer);
            builder.with_client_cert_resolver(Arc::new(AnyCert(Arc::new(certified))))
        }
    };

    let tcp = tokio::net::TcpStream::connect(server.agents_addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let batch = wire::Message::EventBatch(wire::EventBatch {
        batch: 1,
        events: vec![wire::WireEvent {
            id: wire::EventId {
                stream: "s".into(),
                seq: 1,
            },
            event: json!({"path": "/x", "event": "added"}),
        }],
    });
    wire::write_message(&mut stream, &batch, 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    wire::read_message(&mut stream, 1 << 20)
        .await
        .map_err(|e| e.to_string())
}

fn assert_refused(case: &str, outcome: Result<Option<wire::Message>, String>) {
    match outcome {
        Err(_) | Ok(None) | Ok(Some(wire::Message::Rejection(_))) => {}
        Ok(Some(other)) => panic!("{case}: the manager answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_valid_certificate_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let first = enroll(&server, "web-01", SECRET).await.unwrap();
    let second = enroll(&server, "web-02", SECRET).await.unwrap();

    let other_dir = tempfile::tempdir().unwrap();
    let other = start(other_dir.path()).await;
    let foreign = enroll(&other, "web-01", SECRET).await.unwrap();

    let ca = first.ca_pem.as_str();
    assert_refused("no certificate", raw_session(&server, ca, None).await);
    assert_refused(
        "certificate of another CA",
        raw_session(&server, ca, Some((&foreign.cert_pem, &foreign.key_pem))).await,
    );
    assert_refused(
        "another agent's certificate",
        raw_session(&server, ca, Some((&first.cert_pem, &second.key_pem))).await,
    );
    assert!(alert_lines(dir.path()).is_empty());

    // The same client with a matching certificate and key gets its acknowledgement.
    let outcome = raw_session(&server, ca, Some((&first.cert_pem, &first.key_pem))).await;
    assert!(
        matches!(outcome, Ok(Some(wire::Message::Ack(_)))),
        "{outcome:?}"
    );
    assert!(wait_for(|| alert_lines(dir.path()).len() == 1).await);
}
