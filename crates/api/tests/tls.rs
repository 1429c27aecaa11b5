//! The API over HTTPS with a certificate from files, reached by a client that trusts it.

use std::sync::Arc;

use api::{AppState, Db, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, generated.cert.pem()).unwrap();
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).unwrap();

    let db = Db::open(&dir.path().join("data")).unwrap();
    let (_, key) = db.add_user("admin", Role::Admin).unwrap();
    let tls = api::tls_config(&cert_path, &key_path).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://{}/servers/getVersion",
        listener.local_addr().unwrap()
    );
    tokio::spawn(api::serve_tls(
        listener,
        AppState::new(db),
        tls,
        std::future::pending(),
    ));

    let (status, body) = tokio::task::spawn_blocking(move || {
        let pem = std::fs::read(&cert_path).unwrap();
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item.unwrap() {
                ureq::tls::PemItem::Certificate(c) => Some(c),
                _ => None,
            })
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut response = agent
            .get(&url)
            .header("Authorization", &key)
            .call()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"version\""));
}

#[test]
fn missing_certificate_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        api::tls_config(&dir.path().join("none.pem"), &dir.path().join("none.key")).unwrap_err();
    assert!(err.to_string().contains("none.pem"), "{err}");
}
