//! Refresh-token rotation, reuse detection, grace window, logout, expiry, concurrency.
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::helpers::*;
use crate::on_both;

on_both!(
    rotation_gives_a_new_pair_in_the_same_session,
    reuse_revokes_the_whole_session_and_its_access_tokens,
    grace_window_reissues_only_the_newest_spent_token_inside_the_window,
    revoke_ends_one_session_only_and_is_idempotent,
    expired_refresh_tokens_and_sessions_are_refused,
    concurrent_refreshes_of_one_token_have_exactly_one_winner,
    refresh_tokens_are_stored_only_as_hashes,
    disabled_users_cannot_issue_refresh_or_validate,
    dead_sessions_are_cleaned_up,
    malformed_and_unknown_refresh_tokens_are_refused,
    a_stolen_token_cannot_fork_a_session_inside_the_grace_window,
    no_refresh_commits_after_its_session_was_revoked,
);

async fn sql(db: &TestDb, stmt: &str) {
    let conn = Database::connect(&db.url).await.unwrap();
    conn.execute_unprepared(stmt).await.unwrap();
    conn.close().await.unwrap();
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A uuid literal: sqlx stores a uuid as a 16-byte blob in SQLite, natively in PostgreSQL.
fn uuid_lit(db: &TestDb, id: &str) -> String {
    let u = uuid::Uuid::parse_str(id).unwrap();
    if db.url.starts_with("sqlite") {
        format!("X'{}'", u.simple())
    } else {
        format!("'{u}'")
    }
}

/// A timestamp literal both backends compare correctly with what authd writes.
fn ago(d: chrono::Duration) -> String {
    (chrono::Utc::now() - d).to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

async fn rotation_gives_a_new_pair_in_the_same_session(b: Backend) {
    let Some((_db, app)) = start(b).await else {
        return;
    };
    let first = app.login("ivy").await;
    let c1 = app.validate(&first.access_token, "").await.unwrap();
    let second = app.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.token_type, "Bearer");
    let c2 = app.validate(&second.access_token, "").await.unwrap();
    assert_eq!(c2.sid, c1.sid, "same session");
    assert_eq!(c2.sub, c1.sub);
    assert_ne!(c2.jti, c1.jti);
    // The chain goes on.
    let third = app.refresh(&second.refresh_token).await.unwrap();
    app.validate(&third.access_token, "").await.unwrap();
    app.stop().await;
}

async fn reuse_revokes_the_whole_session_and_its_access_tokens(b: Backend) {
    let Some((_db, app)) = start(b).await else {
        return;
    };
    let first = app.login("jack").await;
    let other_session = app.issue("jack", PASSWORD).await.unwrap();
    let second = app.refresh(&first.refresh_token).await.unwrap();
    // Replay of the spent token: refused, and the session dies.
    assert_refused(
        app.refresh(&first.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_refused(
        app.refresh(&second.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
    for t in [&first.access_token, &second.access_token] {
        assert_refused(
            app.validate(t, "").await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
    }
    // The user's other session is untouched.
    app.validate(&other_session.access_token, "").await.unwrap();
    app.refresh(&other_session.refresh_token).await.unwrap();
    app.stop().await;
}

async fn grace_window_reissues_only_the_newest_spent_token_inside_the_window(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.refresh_reuse_grace = Duration::from_secs(60);
    let app = spawn(s).await;

    // Inside the window, the newest spent token earns a fresh pair in the same session,
    // and the client that keeps the newest pair goes on.
    let r1 = app.login("kate").await;
    let r2 = app.refresh(&r1.refresh_token).await.unwrap();
    let again = app.refresh(&r1.refresh_token).await.unwrap();
    assert_ne!(again.refresh_token, r2.refresh_token);
    let sid = app.validate(&r2.access_token, "").await.unwrap().sid;
    assert_eq!(
        app.validate(&again.access_token, "").await.unwrap().sid,
        sid
    );
    let k3 = app.refresh(&again.refresh_token).await.unwrap();
    app.validate(&k3.access_token, "").await.unwrap();
    // The pair the replay replaced is dead: presenting it is reuse.
    assert_refused(
        app.refresh(&r2.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_refused(
        app.validate(&k3.access_token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );

    // An older spent token (not the newest spent) still revokes.
    let a1 = app.login("liam").await;
    let a2 = app.refresh(&a1.refresh_token).await.unwrap();
    let a3 = app.refresh(&a2.refresh_token).await.unwrap();
    assert_refused(
        app.refresh(&a1.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_refused(
        app.validate(&a3.access_token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );

    // Outside the window the newest spent token revokes too.
    let m1 = app.login("mia").await;
    let m2 = app.refresh(&m1.refresh_token).await.unwrap();
    sql(
        &db,
        &format!(
            "UPDATE refresh_tokens SET spent_at = '{}' WHERE token_hash = '{}'",
            ago(chrono::Duration::seconds(120)),
            hash(&m1.refresh_token)
        ),
    )
    .await;
    assert_refused(
        app.refresh(&m1.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_refused(
        app.validate(&m2.access_token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    app.stop().await;
}

async fn revoke_ends_one_session_only_and_is_idempotent(b: Backend) {
    let Some((_db, app)) = start(b).await else {
        return;
    };
    let phone = app.login("noah").await;
    let laptop = app.issue("noah", PASSWORD).await.unwrap();
    app.revoke(&phone.refresh_token).await.unwrap();
    app.revoke(&phone.refresh_token).await.unwrap();
    assert_session_ended(&app, &phone).await;
    app.validate(&laptop.access_token, "").await.unwrap();
    app.refresh(&laptop.refresh_token).await.unwrap();
    // A well-formed token nobody issued: nothing to end, not an error.
    app.revoke("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .unwrap();
    let s = app.revoke("not a token").await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    app.stop().await;
}

async fn expired_refresh_tokens_and_sessions_are_refused(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.session_max_age = Duration::from_secs(3600);
    let app = spawn(s).await;
    let p = app.login("olga").await;
    // Never past the session's absolute expiry.
    assert!(p.refresh_expires_in <= 3600, "{}", p.refresh_expires_in);

    // Idle lifetime over.
    sql(
        &db,
        &format!(
            "UPDATE refresh_tokens SET expires_at = '{}' WHERE token_hash = '{}'",
            ago(chrono::Duration::seconds(1)),
            hash(&p.refresh_token)
        ),
    )
    .await;
    assert_refused(
        app.refresh(&p.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_EXPIRED",
    );

    // Session's absolute lifetime over, with an otherwise fresh token.
    let q = app.issue("olga", PASSWORD).await.unwrap();
    let sid = app.validate(&q.access_token, "").await.unwrap().sid;
    sql(
        &db,
        &format!(
            "UPDATE sessions SET expires_at = '{}' WHERE id = {}",
            ago(chrono::Duration::seconds(1)),
            uuid_lit(&db, &sid)
        ),
    )
    .await;
    assert_refused(
        app.refresh(&q.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_EXPIRED",
    );
    app.stop().await;
}

async fn concurrent_refreshes_of_one_token_have_exactly_one_winner(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let app = spawn(settings(&db)).await;
    // On PostgreSQL the race is also split across two instances on one database.
    let second = second_instance(b, &db).await;
    for round in 0..3 {
        let p = app.login(&format!("racer{round}")).await;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..16 {
            let client = match (&second, i % 2) {
                (Some(s), 1) => s.client.clone(),
                _ => app.client.clone(),
            };
            let token = p.refresh_token.clone();
            set.spawn(async move {
                client
                    .clone()
                    .refresh(authd::proto::RefreshRequest {
                        refresh_token: token,
                    })
                    .await
            });
        }
        // Which call gets which answer is a race; how many get each is not: the calls
        // take the session's lock one at a time, the first spends the token, the second
        // finds it spent (a reuse: the session is revoked), the rest find it revoked.
        let mut outcomes = std::collections::BTreeMap::new();
        while let Some(r) = set.join_next().await {
            let outcome = match r.unwrap() {
                Ok(_) => "OK".to_owned(),
                Err(s) => {
                    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
                    reason(&s)
                }
            };
            *outcomes.entry(outcome).or_insert(0) += 1;
        }
        let expected = [
            ("OK".to_owned(), 1),
            ("REFRESH_TOKEN_REUSED".to_owned(), 1),
            ("SESSION_REVOKED".to_owned(), 14),
        ];
        assert_eq!(outcomes, expected.into(), "round {round}");
    }
    if let Some(s) = second {
        s.stop().await;
    }
    app.stop().await;
}

async fn refresh_tokens_are_stored_only_as_hashes(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    let p = app.login("pia").await;
    let p2 = app.refresh(&p.refresh_token).await.unwrap();
    let conn = Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT token_hash FROM refresh_tokens",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let mut stored = Vec::new();
    for r in rows {
        let h: String = r.try_get("", "token_hash").unwrap();
        for t in [&p.refresh_token, &p2.refresh_token] {
            assert!(!h.contains(t.as_str()));
        }
        stored.push(h);
    }
    assert!(stored.contains(&hash(&p.refresh_token)));
    assert!(stored.contains(&hash(&p2.refresh_token)));
    conn.close().await.unwrap();
    app.stop().await;
}

async fn disabled_users_cannot_issue_refresh_or_validate(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.revocation_refresh = Duration::from_millis(100);
    let app = spawn(s).await;
    let p = app.login("quinn").await;
    let user_id =
        uuid::Uuid::parse_str(&app.validate(&p.access_token, "").await.unwrap().sub).unwrap();
    let store = db.store().await;
    // Disabled by another process (the CLI), as an operator would.
    let ended = store
        .set_user_disabled(user_id, true, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(ended, Some(1), "disabling ends the user's sessions");
    assert_refused(
        app.issue("quinn", PASSWORD).await,
        Code::Unauthenticated,
        "USER_DISABLED",
    );
    // Disabling ended the session in the same transaction, and a refresh checks its
    // session before its user.
    assert_refused(
        app.refresh(&p.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
    // Validate learns of it within the revocation refresh interval.
    eventually(Duration::from_secs(10), || async {
        app.validate(&p.access_token, "").await.is_err()
    })
    .await;
    assert_refused(
        app.validate(&p.access_token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );

    // Enabling lets the user log in again, and nothing more: the sessions that were live
    // when they were disabled stay ended.
    store
        .set_user_disabled(user_id, false, chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    let fresh = app.issue("quinn", PASSWORD).await.unwrap();
    assert_refused(
        app.refresh(&p.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
    // Once the new session validates, the reload has seen the user enabled; the old
    // access token must still be refused.
    eventually(Duration::from_secs(10), || async {
        app.validate(&fresh.access_token, "").await.is_ok()
    })
    .await;
    assert_refused(
        app.validate(&p.access_token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    app.refresh(&fresh.refresh_token).await.unwrap();
    app.stop().await;
}

async fn dead_sessions_are_cleaned_up(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.cleanup_interval = Duration::from_millis(100);
    s.cleanup_retention = Duration::from_secs(3600);
    let app = spawn(s).await;
    let old = app.login("rita").await;
    let live = app.issue("rita", PASSWORD).await.unwrap();
    let old_sid = app.validate(&old.access_token, "").await.unwrap().sid;
    // A session that ended two hours ago, past the one-hour retention.
    sql(
        &db,
        &format!(
            "UPDATE sessions SET expires_at = '{}' WHERE id = {}",
            ago(chrono::Duration::hours(2)),
            uuid_lit(&db, &old_sid)
        ),
    )
    .await;
    eventually(Duration::from_secs(10), || async {
        count_rows(&db, "sessions").await == 1
    })
    .await;
    assert_eq!(
        count_rows(&db, "refresh_tokens").await,
        1,
        "the dead session's tokens went with it"
    );
    app.refresh(&live.refresh_token).await.unwrap();
    app.stop().await;
}

async fn malformed_and_unknown_refresh_tokens_are_refused(b: Backend) {
    let Some((_db, app)) = start(b).await else {
        return;
    };
    for bad in ["", "x", "not base64 !!!", &"A".repeat(44)] {
        assert_refused(
            app.refresh(bad).await,
            Code::Unauthenticated,
            "REFRESH_TOKEN_MALFORMED",
        );
    }
    assert_refused(
        app.refresh("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_UNKNOWN",
    );
    // An access token is not a refresh token.
    let p = app.login("sam").await;
    assert_refused(
        app.refresh(&p.access_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_MALFORMED",
    );
    app.stop().await;
}

/// Live (unspent) refresh tokens of the session of `access`.
async fn live_tokens(db: &TestDb, conn: &sea_orm::DatabaseConnection, sid: &str) -> Vec<String> {
    token_hashes(db, conn, sid, " AND spent_at IS NULL").await
}

async fn token_hashes(
    db: &TestDb,
    conn: &sea_orm::DatabaseConnection,
    sid: &str,
    filter: &str,
) -> Vec<String> {
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            format!(
                "SELECT token_hash FROM refresh_tokens WHERE session_id = {}{filter} \
                 ORDER BY token_hash",
                uuid_lit(db, sid)
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "token_hash").unwrap())
        .collect()
}

/// The attack: the legitimate client spends R1 for R2; a thief replays R1 inside the
/// grace window, again and again. The first replay takes the session over (R2 dies), the
/// second is reuse and ends the session: at no moment two live refresh tokens.
async fn a_stolen_token_cannot_fork_a_session_inside_the_grace_window(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.refresh_reuse_grace = Duration::from_secs(60);
    let app = spawn(s).await;
    let conn = Database::connect(&db.url).await.unwrap();
    let r1 = app.login("fork").await;
    let sid = app.validate(&r1.access_token, "").await.unwrap().sid;
    let r2 = app.refresh(&r1.refresh_token).await.unwrap();
    assert_eq!(
        live_tokens(&db, &conn, &sid).await,
        [hash(&r2.refresh_token)]
    );

    let stolen = app.refresh(&r1.refresh_token).await.unwrap();
    assert_eq!(
        live_tokens(&db, &conn, &sid).await,
        [hash(&stolen.refresh_token)],
        "the replay replaced R2 instead of forking beside it"
    );
    assert_refused(
        app.refresh(&r1.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_refused(
        app.refresh(&r1.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
    for p in [&r2, &stolen] {
        assert_session_ended(&app, p).await;
    }
    conn.close().await.unwrap();
    app.stop().await;
}

/// Logout racing refreshes of the same session, many times over (on PostgreSQL across two
/// instances): once `Revoke` has answered, the session's refresh tokens are final — no
/// refresh that was in flight commits a successor afterwards — and every pair the race
/// handed out is dead.
async fn no_refresh_commits_after_its_session_was_revoked(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let app = spawn(settings(&db)).await;
    let second = second_instance(b, &db).await;
    let other = second.as_ref().unwrap_or(&app);
    let conn = Database::connect(&db.url).await.unwrap();
    app.register("racer", PASSWORD).await.unwrap();
    let mut late_commits = 0;
    for round in 0..40 {
        let p = app.issue("racer", PASSWORD).await.unwrap();
        let sid = app.validate(&p.access_token, "").await.unwrap().sid;
        let mut refreshes = tokio::task::JoinSet::new();
        for i in 0..3 {
            let client = if i % 2 == 0 { other } else { &app }.client.clone();
            let token = p.refresh_token.clone();
            refreshes.spawn(async move {
                client
                    .clone()
                    .refresh(authd::proto::RefreshRequest {
                        refresh_token: token,
                    })
                    .await
            });
        }
        if round % 2 == 1 {
            tokio::task::yield_now().await;
        }
        app.revoke(&p.refresh_token).await.unwrap();
        let at_revoke = token_hashes(&db, &conn, &sid, "").await;
        let mut minted = Vec::new();
        while let Some(r) = refreshes.join_next().await {
            if let Ok(pair) = r.unwrap() {
                minted.push(pair.into_inner());
            }
        }
        let after = token_hashes(&db, &conn, &sid, "").await;
        if after != at_revoke {
            late_commits += 1;
        }
        for pair in &minted {
            assert_refused(
                app.refresh(&pair.refresh_token).await,
                Code::Unauthenticated,
                "SESSION_REVOKED",
            );
            // The instance that revoked refuses at once (others within their reload).
            assert_refused(
                app.validate(&pair.access_token, "").await,
                Code::Unauthenticated,
                "TOKEN_REVOKED",
            );
        }
    }
    assert_eq!(
        late_commits, 0,
        "refresh tokens were stored after their session's revocation had committed"
    );
    conn.close().await.unwrap();
    if let Some(s) = second {
        s.stop().await;
    }
    app.stop().await;
}
