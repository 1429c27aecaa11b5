//! The dashboard through its router, merged with the API's as the server serves them: login
//! and sessions, CSRF, roles, escaping, security headers and the JSON feeds.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use common::*;
use serde_json::Value;

#[tokio::test]
async fn pages_redirect_to_login_without_session() {
    let harness = Harness::new();
    for path in ["/", "/alerts?level=7", "/agents", "/intel", "/integrations"] {
        let response = harness.get(path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&response).starts_with("/login?next="), "{path}");
    }
    let live = harness.get("/live/alerts?after=0", None).await;
    assert_eq!(live.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_sets_strict_http_only_cookie() {
    let harness = Harness::new();
    let response = harness.try_login("admin", &harness.admin_key).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("iocwatch_session="))
        .unwrap();
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(
        !session.contains("Secure"),
        "plain HTTP gets no Secure flag: {session}"
    );
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    let page = text(harness.get("/", Some(&cookie)).await).await;
    assert!(page.contains("<h1>Overview</h1>"));
    assert!(page.contains("admin (admin)"));
}

#[tokio::test]
async fn https_deployment_marks_cookies_secure() {
    let mut harness = Harness::new();
    let state = api::AppState::open(&harness.data).unwrap();
    let sources = dashboard::Sources {
        manager_db: harness.data.join("manager.db"),
        alerts_json: harness.data.join("alerts.json"),
        integration_log: harness.data.join("integrations.json"),
    };
    let dashboard =
        dashboard::DashboardState::new(state.clone(), sources).with_secure_cookies(true);
    harness.app = api::router(state).merge(dashboard::router(dashboard));
    let form = harness.get("/login", None).await;
    assert!(set_cookies(&form).iter().all(|c| c.contains("; Secure")));
    let login = harness.try_login("admin", &harness.admin_key).await;
    assert!(set_cookies(&login).iter().all(|c| c.contains("; Secure")));
}

#[tokio::test]
async fn removed_user_loses_session() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("analyst", &harness.user_key).await;
    let state = api::AppState::open(&harness.data).unwrap();
    assert!(state.db.remove_user("analyst").unwrap());
    let page = harness.get("/", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn session_ends_when_user_id_reused() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("analyst", &harness.user_key).await;
    let state = api::AppState::open(&harness.data).unwrap();
    let old_id = state.db.users().unwrap().last().unwrap().id;
    assert!(state.db.remove_user("analyst").unwrap());
    let (boss, _) = state.db.add_user("boss", api::Role::Admin).unwrap();
    assert_eq!(boss.id, old_id, "the database reuses the removed user's id");
    let page = harness.get("/agents", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(location(&page).starts_with("/login"));
    // The same name added again also gets a new key, so the session stays ended.
    state.db.remove_user("boss").unwrap();
    state.db.add_user("analyst", api::Role::User).unwrap();
    let again = harness.get("/", Some(&cookie)).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_requires_same_origin() {
    let harness = Harness::new();
    let referer = format!("{ORIGIN}/login?next=/");
    let cases = [
        (Some("http://127.0.0.1:9001"), None, StatusCode::FORBIDDEN),
        (Some("https://127.0.0.1:8443"), None, StatusCode::FORBIDDEN),
        (
            None,
            Some("http://127.0.0.1:9001/page"),
            StatusCode::FORBIDDEN,
        ),
        (None, None, StatusCode::FORBIDDEN),
        (None, Some(referer.as_str()), StatusCode::SEE_OTHER),
        (Some(ORIGIN), None, StatusCode::SEE_OTHER),
    ];
    for (origin, referer, expected) in cases {
        let (cookie, token) = harness.login_form().await;
        let response = harness.login_from(origin, referer, &cookie, &token).await;
        assert_eq!(response.status(), expected, "{origin:?} {referer:?}");
    }
}

#[tokio::test]
async fn login_token_must_be_server_issued() {
    let harness = Harness::new();
    // A cookie and field chosen by another site on the same host do not pass, even with
    // this site's origin.
    let chosen = "iocwatch_login=evil0123456789";
    let forged = harness
        .login_from(Some(ORIGIN), None, chosen, "evil0123456789")
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // A token the server issued works once.
    let (cookie, token) = harness.login_form().await;
    let first = harness
        .login_from(Some(ORIGIN), None, &cookie, &token)
        .await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let replay = harness
        .login_from(Some(ORIGIN), None, &cookie, &token)
        .await;
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn invalid_dates_are_reported() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("reader", &harness.reader_key).await;
    for query in ["from=2026-13-45", "to=2026-02-30", "from=2026-01-01T25:00"] {
        let page = harness
            .get(&format!("/alerts?{query}"), Some(&cookie))
            .await;
        let html = text(page).await;
        assert!(html.contains("expected YYYY-MM-DD"), "{query}: {html}");
        let (status, body) = harness
            .feed(&format!("/iocwatch/alerts?{query}"), &harness.reader_key)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body.to_string().contains("expected YYYY-MM-DD"), "{body}");
    }
}

#[tokio::test]
async fn login_rejects_wrong_key_and_other_users_key() {
    let harness = Harness::new();
    let wrong = harness.try_login("admin", &"x".repeat(40)).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(text(wrong).await.contains("Invalid user name or API key."));
    let swapped = harness.try_login("admin", &harness.reader_key).await;
    assert_eq!(swapped.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_hit_the_api_limiter() {
    let harness = Harness::new();
    for _ in 0..api::auth::MAX_FAILURES {
        let response = harness.try_login("admin", "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = harness.try_login("admin", &harness.admin_key).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    // The API shares the limiter: the same address is blocked there too.
    let (status, _) = harness.feed("/iocwatch/agents", &harness.admin_key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn login_form_requires_its_csrf_token() {
    let harness = Harness::new();
    let response = harness
        .post_form(
            "/login",
            "iocwatch_login=abc",
            &[
                ("name", "admin"),
                ("key", &harness.admin_key),
                ("csrf", "def"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookies(&response)
        .iter()
        .all(|c| !c.starts_with("iocwatch_session=")));
}

#[tokio::test]
async fn post_without_csrf_token_is_rejected() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("admin", &harness.admin_key).await;
    let forged = harness
        .post_form("/logout", &cookie, &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let missing = harness.post_form("/logout", &cookie, &[]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let cross_site = Request::post("/logout")
        .header(header::COOKIE, &cookie)
        .header(header::HOST, "127.0.0.1:8443")
        .header(header::ORIGIN, "http://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap();
    assert_eq!(
        harness.send(cross_site).await.status(),
        StatusCode::FORBIDDEN
    );
    // The session survived the forged requests, and a real logout ends it.
    assert_eq!(
        harness.get("/", Some(&cookie)).await.status(),
        StatusCode::OK
    );
    let logout = harness
        .post_form("/logout", &cookie, &[("csrf", &csrf)])
        .await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        harness.get("/", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn multipart_upload_without_csrf_is_rejected() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("analyst", &harness.user_key).await;
    let body = multipart(&[
        ("csrf", None, "forged"),
        ("file", Some("x.sha256"), MATCHED_SHA256),
    ]);
    let response = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn idle_session_expires() {
    let harness = Harness::with_limits(Duration::ZERO, Duration::from_secs(3600));
    let response = harness.try_login("admin", &harness.admin_key).await;
    let cookie = set_cookies(&response)[0]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = harness.get("/alerts", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(location(&page).starts_with("/login"));
}

#[tokio::test]
async fn session_expires_after_absolute_limit() {
    let harness = Harness::with_limits(Duration::from_secs(3600), Duration::ZERO);
    let response = harness.try_login("admin", &harness.admin_key).await;
    let cookie = set_cookies(&response)[0]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        harness.get("/", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn read_only_user_cannot_import() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("reader", &harness.reader_key).await;
    assert_eq!(
        harness.get("/intel/import", Some(&cookie)).await.status(),
        StatusCode::FORBIDDEN
    );
    let body = multipart(&[
        ("csrf", None, &csrf),
        ("file", Some("x.sha256"), MATCHED_SHA256),
    ]);
    let response = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let intel = text(harness.get("/intel", Some(&cookie)).await).await;
    assert!(
        !intel.contains("href=\"/intel/import\""),
        "no import link for read-only users"
    );
}

#[tokio::test]
async fn user_imports_hash_list_by_upload() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("analyst", &harness.user_key).await;
    let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let body = multipart(&[("csrf", None, &csrf), ("file", Some("../new.sha256"), hash)]);
    let response = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = text(response).await;
    assert!(page.contains("new.sha256"), "{page}");
    assert!(page.contains("1 hash detections"), "{page}");
    let search = text(
        harness
            .get(&format!("/intel?q={hash}"), Some(&cookie))
            .await,
    )
    .await;
    assert!(search.contains(hash));
    assert!(!harness.data.join("new.sha256").exists());
}

#[tokio::test]
async fn upload_accepts_csrf_header() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("analyst", &harness.user_key).await;
    let hash = "a".repeat(64);
    let body = multipart(&[("file", Some("header.sha256"), &hash)]);
    let mut request = upload_request(&cookie, body);
    request
        .headers_mut()
        .insert("x-csrf-token", csrf.parse().unwrap());
    let response = harness.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(text(response).await.contains("1 hash detections"));
}

#[tokio::test]
async fn oversized_upload_gets_413() {
    let harness = Harness::with_upload_limit(1000);
    let (cookie, csrf) = harness.login("analyst", &harness.user_key).await;
    let big = format!("{MATCHED_SHA256}\n").repeat(40);
    let body = multipart(&[("csrf", None, &csrf), ("file", Some("big.sha256"), &big)]);
    let response = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(text(response).await.contains("larger than 1000 bytes"));
    // A file under the limit passes.
    let body = multipart(&[
        ("csrf", None, &csrf),
        ("file", Some("ok.sha256"), MATCHED_SHA256),
    ]);
    let response = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_upload_is_rejected() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("analyst", &harness.user_key).await;
    // The first upload's body arrives in two parts; the second part waits on a channel.
    let body = multipart(&[
        ("csrf", None, &csrf),
        ("file", Some("slow.sha256"), MATCHED_SHA256),
    ]);
    let (head, tail) = body.split_at(body.len() / 2);
    let (sender, receiver) = tokio::sync::mpsc::channel::<String>(1);
    sender.send(head.to_owned()).await.unwrap();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), receiver))
    });
    let mut slow = upload_request(&cookie, String::new());
    *slow.body_mut() = Body::from_stream(stream);
    let harness = std::sync::Arc::new(harness);
    let first = tokio::spawn({
        let harness = harness.clone();
        async move { harness.send(slow).await }
    });
    // Once the handler has taken the first part, it is reading the file and holds the
    // import permit, so a second import is rejected.
    while sender.capacity() < sender.max_capacity() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let body = multipart(&[
        ("csrf", None, &csrf),
        ("file", Some("b.sha256"), MATCHED_SHA256),
    ]);
    let refused = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let refused = text(refused).await;
    assert!(
        refused.contains("another intel import is running"),
        "{refused}"
    );
    sender.send(tail.to_owned()).await.unwrap();
    drop(sender);
    let first = first.await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    // Once it is done, imports are accepted again.
    let body = multipart(&[
        ("csrf", None, &csrf),
        ("file", Some("c.sha256"), MATCHED_SHA256),
    ]);
    let after = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(after.status(), StatusCode::OK);
}

#[tokio::test]
async fn import_failure_shows_file_and_cause() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("analyst", &harness.user_key).await;
    let body = multipart(&[
        ("csrf", None, &csrf),
        ("file", Some("bad.json"), "{\"Event\": ["),
    ]);
    let response = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = text(response).await;
    assert!(page.contains("bad.json"), "{page}");
    let temp = std::env::temp_dir().display().to_string();
    assert!(!page.contains(&temp), "{page}");
}

#[tokio::test]
async fn hostile_alert_fields_are_escaped() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    for path in [
        "/",
        "/alerts",
        "/alerts/1796378400.2",
        "/integrations",
        "/agents",
    ] {
        let page = text(harness.get(path, Some(&cookie)).await).await;
        assert!(
            !page.contains("<script>alert"),
            "{path} prints markup from data"
        );
        assert!(!page.contains("<b>1</b>"), "{path} prints markup from data");
    }
    let detail = text(harness.get("/alerts/1796378400.2", Some(&cookie)).await).await;
    assert!(
        detail.contains("&lt;script&gt;alert("),
        "the path is shown, escaped"
    );
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    for path in ["/login", "/", "/static/app.js"] {
        let response = harness.get(path, Some(&cookie)).await;
        let headers = response.headers();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
    }
    let page = text(harness.get("/", Some(&cookie)).await).await;
    assert!(!page.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn alerts_page_filters_and_detail_shows_event() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("reader", &harness.reader_key).await;
    let high = text(harness.get("/alerts?level=10", Some(&cookie)).await).await;
    assert!(high.contains("1796378400.2"));
    assert!(!high.contains("1796378400.1\""));
    let agent = text(harness.get("/alerts?agent=002", Some(&cookie)).await).await;
    assert!(agent.contains("1796378400.3"));
    assert!(!agent.contains("1796378400.2"));
    let intel = text(harness.get("/alerts?intel=1", Some(&cookie)).await).await;
    assert!(intel.contains("href=\"/alerts/1796378400.2\""));
    assert!(!intel.contains("href=\"/alerts/1796378400.3\""));
    let group = text(harness.get("/alerts?group=misp_alert", Some(&cookie)).await).await;
    assert!(group.contains("href=\"/alerts/1796378400.2\""));
    assert!(!group.contains("href=\"/alerts/1796378400.1\""));
    let text_and_group = harness.get("/alerts?group=misp_alert&q=readme", Some(&cookie));
    let none = text(text_and_group.await).await;
    assert!(!none.contains("href=\"/alerts/1796378400"));
    assert!(agent.contains("href=\"/alerts?from="), "time range presets");
    assert!(
        agent.contains("&amp;agent=002\""),
        "presets keep the other filters"
    );
    let invalid = harness.get("/alerts?from=yesterday", Some(&cookie)).await;
    assert!(text(invalid).await.contains("expected YYYY-MM-DD"));

    let detail = text(harness.get("/alerts/1796378400.2", Some(&cookie)).await).await;
    assert!(detail.contains("MISP event"));
    assert!(detail.contains("12 critical"), "level as text");
    assert!(
        detail.contains("/var/q/1-x.exe"),
        "quarantine status from the active response"
    );
    assert!(detail.contains(MATCHED_SHA256));
    let missing = harness.get("/alerts/nope", Some(&cookie)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn live_feed_returns_newer_alerts() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("reader", &harness.reader_key).await;
    let response = harness
        .get("/live/alerts?after=2&level=5", Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let live: Value = serde_json::from_str(&text(response).await).unwrap();
    let ids: Vec<&str> = live["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1796378400.3", "1796378400.4"]);
    assert_eq!(live["last_seq"], 4);
    assert_eq!(live["alerts"][0]["level_label"], "notice");
}

#[tokio::test]
async fn feeds_require_api_key() {
    let harness = Harness::new();
    for path in [
        "/iocwatch/alerts",
        "/iocwatch/alerts/1796378400.2",
        "/iocwatch/agents",
        "/iocwatch/integrations",
    ] {
        let (status, body) = harness.feed(path, "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body["message"].is_string(), "{path}: MISP error shape");
    }
    // A session cookie is not an API key.
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    assert_eq!(
        harness
            .get("/iocwatch/agents", Some(&cookie))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn alerts_feed_filters_and_pages() {
    let harness = Harness::new();
    let (status, all) = harness.feed("/iocwatch/alerts", &harness.reader_key).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = all["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "1796378400.4",
            "1796378400.3",
            "1796378400.2",
            "1796378400.1"
        ]
    );

    let (_, paged) = harness
        .feed("/iocwatch/alerts?limit=3&page=2", &harness.reader_key)
        .await;
    assert_eq!(paged["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(paged["has_next"], false);

    let (_, filtered) = harness
        .feed(
            "/iocwatch/alerts?level=7&agent=web1&rule_id=111010",
            &harness.reader_key,
        )
        .await;
    assert_eq!(filtered["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(
        filtered["alerts"][0]["data"]["misp"]["value"],
        MATCHED_SHA256
    );

    let (status, bad) = harness
        .feed("/iocwatch/alerts?to=tomorrow", &harness.reader_key)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["message"].as_str().unwrap().contains("`to`"));
}

#[tokio::test]
async fn alert_agent_and_integration_feeds() {
    let harness = Harness::new();
    let (status, one) = harness
        .feed("/iocwatch/alerts/1796378400.2", &harness.reader_key)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["alert"]["rule"]["id"], "111010");
    assert_eq!(
        one["active_response"][0]["data"]["active_response"]["status"],
        "done"
    );
    let (status, _) = harness
        .feed("/iocwatch/alerts/none", &harness.reader_key)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, agents) = harness.feed("/iocwatch/agents", &harness.reader_key).await;
    assert_eq!(agents["agents"][0]["id"], "001");
    assert_eq!(agents["agents"][0]["alerts"], 3);
    assert_eq!(agents["agents"][0]["events"], 40);
    assert_eq!(agents["agents"][1]["status"], "disconnected");

    let (_, lookups) = harness
        .feed("/iocwatch/integrations?result=match", &harness.reader_key)
        .await;
    assert_eq!(lookups["lookups"].as_array().unwrap().len(), 1);
    assert_eq!(lookups["lookups"][0]["latency_us"], 3.25);
}

#[tokio::test]
async fn pages_render_without_manager_database() {
    let harness = Harness::new();
    std::fs::remove_file(harness.data.join("manager.db")).unwrap();
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    for path in [
        "/",
        "/alerts",
        "/agents",
        "/intel",
        "/intel/warninglists",
        "/integrations",
    ] {
        let response = harness.get(path, Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn event_page_lists_related_events_and_galaxies() {
    let harness = Harness::new();
    // A second event with the already imported hash and an ATT&CK cluster.
    let event = serde_json::json!({"Event": {
        "info": "second sighting of the sample",
        "Tag": [{"name": "misp-galaxy:mitre-attack-pattern=\"PowerShell - T1059.001\""}],
        "Attribute": [{"type": "sha256", "category": "Payload delivery",
                       "value": MATCHED_SHA256, "to_ids": true}]
    }});
    let request = Request::post("/events/add")
        .header(header::AUTHORIZATION, &harness.admin_key)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(event.to_string()))
        .unwrap();
    let response = harness.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let added: Value = serde_json::from_str(&text(response).await).unwrap();
    let id = added["Event"]["id"].as_str().unwrap().to_owned();

    let (cookie, _) = harness.login("reader", &harness.reader_key).await;
    let page = text(
        harness
            .get(&format!("/intel/events/{id}"), Some(&cookie))
            .await,
    )
    .await;
    assert!(
        page.contains("mitre-attack-pattern: PowerShell - T1059.001"),
        "{page}"
    );
    assert!(page.contains("Related events"), "{page}");
    assert!(page.contains("href=\"/intel/events/1\""), "{page}");
}
