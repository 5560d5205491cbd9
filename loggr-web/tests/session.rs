//! Login, logout, sessions, CSRF and the security headers, over real HTTP against the
//! frontend served on a local port (PostgreSQL from `bash scripts/services.sh`).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use support::{enc, Client, TestDb, ALICE_PASSWORD, BOB_PASSWORD};

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

#[tokio::test]
async fn login_succeeds_with_the_right_password_and_sets_a_strict_cookie() {
    let db = TestDb::new("login_ok").await;
    let addr = support::serve(&db.url(), 50, 100).await;
    let mut client = Client::new(addr);
    let page = client.get("/login").await;
    assert_eq!(page.status, 200);
    let login_cookie = page.set_cookies().join("\n");
    assert!(login_cookie.contains("loggr_login_csrf="), "{login_cookie}");
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"));

    let answer = client.login("bob", BOB_PASSWORD).await;
    assert_eq!(answer.status, 303, "{answer:?}");
    assert_eq!(answer.header("location"), Some("/events"));
    let cookie = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("loggr_session="))
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "secure_cookies = false: {cookie}"
    );
    let id = &cookie["loggr_session=".len()..cookie.find(';').unwrap()];
    assert_eq!(id.len(), 64, "32 random bytes, hex");

    let events = client.get("/events").await;
    assert_eq!(events.status, 200);
    assert!(events.body.contains("bob (reader)"), "{}", events.body);
    assert!(!events.body.contains("argon2"), "no hash shown");
}

#[tokio::test]
async fn login_fails_with_a_wrong_password_or_an_unknown_user() {
    let db = TestDb::new("login_bad").await;
    let addr = support::serve(&db.url(), 50, 100).await;
    for (user, password) in [
        ("alice", "wrong"),
        ("alice", BOB_PASSWORD),
        ("mallory", ALICE_PASSWORD),
        ("", ""),
        ("alice' OR '1'='1", "x' OR '1'='1"),
    ] {
        let mut client = Client::new(addr);
        let answer = client.login(user, password).await;
        assert_eq!(answer.status, 401, "{user}: {answer:?}");
        assert!(answer.body.contains("Wrong user name or password."));
        assert!(!client.cookies.contains_key("loggr_session"));
        let events = client.get("/events").await;
        assert_eq!(events.status, 303, "{user}");
    }
}

#[tokio::test]
async fn routes_without_a_session_redirect_pages_and_refuse_exports() {
    let db = TestDb::new("nosession").await;
    let addr = support::serve(&db.url(), 50, 100).await;
    let mut anonymous = Client::new(addr);
    let mut forged = Client::new(addr);
    forged
        .cookies
        .insert("loggr_session".into(), "00".repeat(32));
    for client in [&mut anonymous, &mut forged] {
        for page in ["/", "/events", "/events?host=x", "/events/1", "/status"] {
            let answer = client.get(page).await;
            assert_eq!(answer.status, 303, "{page}");
            let location = answer.header("location").unwrap();
            assert!(
                location == "/login" || location == "/events",
                "{page}: {location}"
            );
        }
        for export in ["/events.csv", "/events.jsonl?q=x"] {
            let answer = client.get(export).await;
            assert_eq!(answer.status, 401, "{export}");
            assert_eq!(answer.body, "login required");
        }
        let answer = client.post("/logout", "csrf=x").await;
        assert_eq!(answer.status, 303);
        assert_eq!(answer.header("location"), Some("/login"));
    }
}

#[tokio::test]
async fn posts_without_or_with_a_wrong_csrf_token_are_refused() {
    let db = TestDb::new("csrf").await;
    let addr = support::serve(&db.url(), 50, 100).await;

    // Login: no token, a wrong one, a form token without its cookie.
    let mut client = Client::new(addr);
    let form = format!("username=alice&password={}", enc(ALICE_PASSWORD));
    let answer = client.post("/login", &form).await;
    assert_eq!(answer.status, 403, "no token at all");
    let page = client.get("/login").await;
    let token = page.csrf_field();
    let answer = client.post("/login", &form).await;
    assert_eq!(answer.status, 403, "cookie without a form token");
    let answer = client
        .post("/login", &format!("csrf={}&{form}", "0".repeat(64)))
        .await;
    assert_eq!(answer.status, 403, "a wrong form token");
    let mut no_cookie = Client::new(addr);
    let answer = no_cookie
        .post("/login", &format!("csrf={token}&{form}"))
        .await;
    assert_eq!(answer.status, 403, "form token without its cookie");
    assert!(!client.cookies.contains_key("loggr_session"));

    // Logout: no token, a wrong one, another session's token; the session survives.
    let mut alice = Client::logged_in(addr).await;
    let other = Client::logged_in(addr).await;
    let events = alice.get("/events").await;
    let csrf = events.csrf_field();
    let other_csrf = {
        let mut other = other;
        other.get("/events").await.csrf_field()
    };
    assert_ne!(csrf, other_csrf, "one token per session");
    for body in ["", "csrf=", "csrf=0000", &format!("csrf={other_csrf}")] {
        let answer = alice.post("/logout", body).await;
        assert_eq!(answer.status, 403, "{body:?}");
        assert!(answer.body.contains("CSRF"));
    }
    assert_eq!(alice.get("/events").await.status, 200, "still logged in");

    // With the right token: logged out, the session id no longer works.
    let session = alice.cookies["loggr_session"].clone();
    let answer = alice.post("/logout", &format!("csrf={csrf}")).await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.header("location"), Some("/login"));
    assert!(!alice.cookies.contains_key("loggr_session"));
    alice.cookies.insert("loggr_session".into(), session);
    assert_eq!(alice.get("/events").await.status, 303, "session ended");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let db = TestDb::new("headers").await;
    let addr = support::serve(&db.url(), 50, 100).await;
    let mut client = Client::logged_in(addr).await;
    for target in [
        "/login",
        "/events",
        "/events/999999",
        "/events.csv",
        "/status",
        "/static/style.css",
        "/nowhere",
    ] {
        let answer = client.get(target).await;
        assert_eq!(
            answer.header("content-security-policy"),
            Some(CSP),
            "{target}"
        );
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{target}"
        );
        assert_eq!(
            answer.header("referrer-policy"),
            Some("no-referrer"),
            "{target}"
        );
    }
    let css = client.get("/static/style.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    let mut anonymous = Client::new(addr);
    let answer = anonymous.get("/events.jsonl").await;
    assert_eq!(answer.header("content-security-policy"), Some(CSP));
}

both!(the_status_page_shows_the_store_and_no_secrets);
async fn the_status_page_shows_the_store_and_no_secrets(db: TestDb) {
    let now = jiff::Timestamp::now().to_string();
    db.insert(&support::NewEvent::new(1, &now, "recent")).await;
    let addr = support::serve(&db.url(), 50, 100).await;
    let mut client = Client::logged_in(addr).await;
    let answer = client.get("/status").await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("reachable"), "{}", answer.body);
    assert!(answer.body.contains("1 events"), "{}", answer.body);
    assert!(!answer.body.contains("postgresql://"));
    assert!(!answer.body.contains("argon2"));
}

#[tokio::test]
async fn a_missing_database_is_reported_without_details() {
    let db = TestDb::new("nodb").await;
    let url = format!("{}_missing", db.url());
    let addr = support::serve(&url, 50, 100).await;
    let mut client = Client::logged_in(addr).await;
    let status = client.get("/status").await;
    assert_eq!(status.status, 200);
    assert!(status.body.contains("unreachable"), "{}", status.body);
    for target in ["/events", "/events.csv", "/events/1"] {
        let answer = client.get(target).await;
        assert_eq!(answer.status, 500, "{target}");
        assert_eq!(answer.body, "internal error (see the server's log)");
    }
}
