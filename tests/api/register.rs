//! Register and Issue: the happy path, uniqueness, input rules, identical refusals.
use tonic::Code;

use crate::helpers::*;
use crate::on_both;

on_both!(
    register_issue_validate,
    usernames_are_unique_across_case_and_unicode_forms,
    every_input_rule_is_enforced_and_changes_nothing,
    wrong_password_and_unknown_user_are_indistinguishable,
    oversized_request_is_refused_and_server_keeps_serving,
    registration_can_be_switched_off,
    rehash_on_login_when_parameters_change,
    look_alike_usernames_are_refused_or_taken_and_store_nothing,
    weak_passwords_are_refused_and_store_nothing,
    password_settings_bound_new_passwords_and_refuse_to_start_below_the_floor,
    users_of_the_first_username_rule_still_log_in_after_rekeying,
);

async fn register_issue_validate(b: Backend) {
    let Some((_db, app)) = start(b).await else {
        return;
    };
    let id = app.register("Alice", PASSWORD).await.unwrap();
    uuid::Uuid::parse_str(&id).unwrap();

    let pair = app.issue("alice", PASSWORD).await.unwrap();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    assert!(pair.refresh_expires_in > 0);
    assert!(!pair.refresh_token.is_empty());

    let claims = app.validate(&pair.access_token, "").await.unwrap();
    assert_eq!(claims.sub, id);
    assert_eq!(claims.username, "Alice");
    assert_eq!(claims.iss, "authd");
    assert_eq!(claims.aud, vec!["authd".to_string()]);
    assert_eq!(claims.exp - claims.iat, 900);
    uuid::Uuid::parse_str(&claims.sid).unwrap();
    assert!(!claims.jti.is_empty());

    app.stop().await;
}

async fn usernames_are_unique_across_case_and_unicode_forms(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    app.register("Alice", PASSWORD).await.unwrap();
    for twin in ["alice", "ALICE", " alice ", "Ａｌｉｃｅ", "ａｌｉｃｅ"] {
        let s = app.register(twin, PASSWORD).await.unwrap_err();
        assert_eq!(s.code(), Code::AlreadyExists, "{twin:?}: {s:?}");
    }
    // NFC: a letter with a combining ring and the precomposed letter are one name.
    app.register("A\u{030A}sa", PASSWORD).await.unwrap();
    let s = app.register("\u{00C5}SA", PASSWORD).await.unwrap_err();
    assert_eq!(s.code(), Code::AlreadyExists);
    // RFC 8265 maps width, not compatibility forms: the Angstrom sign is refused.
    assert_refused(
        app.register("\u{212B}sa", PASSWORD).await,
        Code::InvalidArgument,
        "INVALID_USERNAME",
    );
    // Any form logs in.
    app.issue("ＡＬＩＣＥ", PASSWORD).await.unwrap();
    assert_eq!(db.store().await.list_users().await.unwrap().len(), 2);
    app.stop().await;
}

async fn every_input_rule_is_enforced_and_changes_nothing(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    let cases: Vec<(String, String, &str)> = vec![
        ("".into(), PASSWORD.into(), "username must not be empty"),
        ("   ".into(), PASSWORD.into(), "username must not be empty"),
        ("x".repeat(65), PASSWORD.into(), "at most 64 characters"),
        ("bob\u{0}".into(), PASSWORD.into(), "control characters"),
        ("bob\nsmith".into(), PASSWORD.into(), "control characters"),
        ("bob".into(), "".into(), "password must not be empty"),
        ("bob".into(), "x".repeat(1025), "at most 1024 bytes"),
    ];
    for (u, p, rule) in &cases {
        let s = app.register(u, p).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{u:?}: {s:?}");
        assert!(s.message().contains(rule), "{u:?}: {:?}", s.message());
        let s = app.issue(u, p).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "issue {u:?}: {s:?}");
    }
    // Too short is the policy's (new passwords only): refused at Register, merely a wrong
    // password at Issue.
    let s = assert_refused(
        app.register("bob", "1234567").await,
        Code::InvalidArgument,
        "PASSWORD_TOO_WEAK",
    );
    assert!(s.message().contains("at least 8 characters"), "{s:?}");
    assert_refused(
        app.issue("bob", "1234567").await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    // The limits themselves are allowed: 64 characters, and 1024 bytes of a password the
    // policy accepts.
    app.register(&"é".repeat(64), &STRONG_1024[..1024])
        .await
        .unwrap();
    app.register("carol", PASSWORD).await.unwrap();
    let users = db.store().await.list_users().await.unwrap();
    assert_eq!(users.len(), 2, "refused input must not create users");
    app.stop().await;
}

async fn wrong_password_and_unknown_user_are_indistinguishable(b: Backend) {
    let Some((_db, app)) = start(b).await else {
        return;
    };
    app.register("dave", PASSWORD).await.unwrap();
    let wrong = app.issue("dave", "not the password").await.unwrap_err();
    let unknown = app.issue("nobody", "not the password").await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(wrong.code(), unknown.code());
    assert_eq!(wrong.message(), unknown.message());
    assert_eq!(reason(&wrong), "INVALID_CREDENTIALS");
    assert_eq!(reason(&wrong), reason(&unknown));
    assert_eq!(wrong.details(), unknown.details());
    // Neither message echoes the input.
    assert!(!wrong.message().contains("not the password"));
    assert!(!unknown.message().contains("nobody"));
    app.stop().await;
}

async fn oversized_request_is_refused_and_server_keeps_serving(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    let huge = "p".repeat(2 * 1024 * 1024);
    // tonic refuses a message over the server's decoding limit (MAX_REQUEST_BYTES) with
    // OUT_OF_RANGE from the length prefix alone, before reading or decoding the body.
    for s in [
        app.register("erin", &huge).await.unwrap_err(),
        app.issue("erin", &huge).await.unwrap_err(),
    ] {
        assert_eq!(s.code(), Code::OutOfRange, "{s:?}");
        assert!(s.message().contains("too large"), "{s:?}");
        assert!(!s.message().contains("ppppppppp"));
    }
    assert!(db.store().await.list_users().await.unwrap().is_empty());
    // Still serving, on the same connection.
    app.register("erin", PASSWORD).await.unwrap();
    app.issue("erin", PASSWORD).await.unwrap();
    app.stop().await;
}

async fn registration_can_be_switched_off(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.allow_registration = false;
    let app = spawn(s).await;
    assert_refused(
        app.register("frank", PASSWORD).await,
        Code::PermissionDenied,
        "REGISTRATION_CLOSED",
    );
    assert!(db.store().await.list_users().await.unwrap().is_empty());
    app.stop().await;
}

async fn rehash_on_login_when_parameters_change(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let app = spawn(settings(&db)).await;
    app.register("gina", PASSWORD).await.unwrap();
    app.stop().await;
    let store = db.store().await;
    let before = store.list_users().await.unwrap()[0].password_hash.clone();
    assert!(before.contains("m=256,t=1,p=1"), "{before}");

    let mut s = settings(&db);
    s.hashing.argon2_m_kib = 512;
    let app = spawn(s).await;
    app.issue("gina", PASSWORD).await.unwrap();
    let after = store.list_users().await.unwrap()[0].password_hash.clone();
    assert!(
        after.starts_with("$argon2id$v=19$m=512,t=1,p=1$"),
        "{after}"
    );
    // Still the same password.
    app.issue("gina", PASSWORD).await.unwrap();
    app.stop().await;
}

/// 1024 bytes (and a few more) of a passphrase the password policy accepts.
const STRONG_1024: &str = concat!(
    "glacier mango trombone velvet quietly ",
    "ninety-nine paper lanterns drift over the harbour at dawn; ",
    "correct horse battery staple, but longer and odder: ",
    "a walrus named Theodore audits the lighthouse ledger every Tuesday, ",
    "while seventeen sleepy otters debate the merits of cold brewed coffee, ",
    "and the orchestra tunes its kazoos beneath a violet sky. ",
    "Nobody remembers who ordered forty kilograms of turmeric, ",
    "yet the invoice insists, and the harbour master signs it twice. ",
    "Meanwhile a lonely robot composes sonnets for the tide tables, ",
    "rhyming neap with leap and spring with everything. ",
    "The bakery on the corner sells bread shaped like famous bridges; ",
    "the Golden Gate loaf is sold out by nine, the Rialto by ten. ",
    "Umbrellas bloom on the promenade although it has not rained in weeks, ",
    "because fashion, like weather, is mostly rumour and momentum. ",
    "At midnight the lanterns return, slightly singed, to their hooks. ",
    "And that, dear reader, is more than enough characters for this test, ",
    "give or take a kilogram of turmeric and a kazoo or two."
);

/// The look-alikes of an existing `alice`: refused by the username rules, or the same key
/// (ALREADY_EXISTS). Either way nothing is stored and no message echoes the name.
async fn look_alike_usernames_are_refused_or_taken_and_store_nothing(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    let alice = app.register("alice", PASSWORD).await.unwrap();
    let cases = [
        // Zero-width space, soft hyphen, right-to-left override.
        (
            "alice\u{200B}",
            Code::InvalidArgument,
            "INVALID_USERNAME",
            "invisible",
        ),
        (
            "alice\u{00AD}",
            Code::InvalidArgument,
            "INVALID_USERNAME",
            "invisible",
        ),
        (
            "\u{202E}ecila",
            Code::InvalidArgument,
            "INVALID_USERNAME",
            "invisible",
        ),
        // Cyrillic a among Latin letters; also Cyrillic a and i among Latin ones.
        (
            "\u{0430}lice",
            Code::InvalidArgument,
            "INVALID_USERNAME",
            "mix scripts",
        ),
        (
            "\u{0430}l\u{0456}ce",
            Code::InvalidArgument,
            "INVALID_USERNAME",
            "mix scripts",
        ),
        // All-Cyrillic (one script, a valid name by itself): its skeleton is `alice`.
        (
            "\u{0430}\u{04CF}\u{0456}\u{0441}\u{0435}",
            Code::AlreadyExists,
            "USERNAME_TAKEN",
            "taken",
        ),
        // Case and width variants are the same user.
        ("ALICE", Code::AlreadyExists, "USERNAME_TAKEN", "taken"),
        (
            "\u{FF21}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}",
            Code::AlreadyExists,
            "USERNAME_TAKEN",
            "taken",
        ),
    ];
    for (name, code, why, says) in cases {
        let s = assert_refused(app.register(name, PASSWORD).await, code, why);
        assert!(s.message().contains(says), "{name:?}: {s:?}");
        assert!(!s.message().contains(name.trim()), "{name:?}: {s:?}");
    }
    let users = db.store().await.list_users().await.unwrap();
    assert_eq!(users.len(), 1, "refused names must not create users");
    // Full-width and upper case log in as alice, and her tokens show her name.
    for name in ["\u{FF21}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}", "ALICE", "alice"] {
        let pair = app.issue(name, PASSWORD).await.unwrap();
        let claims = app.validate(&pair.access_token, "").await.unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.username.as_str()),
            (alice.as_str(), "alice")
        );
    }
    app.stop().await;
}

async fn weak_passwords_are_refused_and_store_nothing(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    let cases = [
        ("password", "top-10 common password"),
        ("12345678", "too easy to guess"),
        ("aaaaaaaa", "too easy to guess"),
        ("alicealice", "username or the service name"),
        ("Alice2024!", "username or the service name"),
        ("authd-authd", "username or the service name"),
        ("short", "at least 8 characters"),
    ];
    for (password, says) in cases {
        let s = assert_refused(
            app.register("alice", password).await,
            Code::InvalidArgument,
            "PASSWORD_TOO_WEAK",
        );
        assert!(s.message().contains(says), "{password:?}: {s:?}");
        // (Every message starts with the word "password", the first case's password.)
        if password != "password" {
            assert!(!s.message().contains(password), "{password:?}: {s:?}");
        }
    }
    assert!(db.store().await.list_users().await.unwrap().is_empty());
    // A passphrase passes, and so does the one every scenario uses.
    app.register("alice", "glacier mango trombone velvet")
        .await
        .unwrap();
    app.register("bob", PASSWORD).await.unwrap();
    app.issue("alice", "glacier mango trombone velvet")
        .await
        .unwrap();
    app.stop().await;
}

async fn password_settings_bound_new_passwords_and_refuse_to_start_below_the_floor(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.password.password_min_length = 30;
    let app = spawn(s).await;
    // 28 characters: strong, but shorter than this server asks.
    let r = assert_refused(
        app.register("alice", PASSWORD).await,
        Code::InvalidArgument,
        "PASSWORD_TOO_WEAK",
    );
    assert!(r.message().contains("at least 30 characters"), "{r:?}");
    app.register("alice", "correct horse battery staple on a glacier")
        .await
        .unwrap();
    app.stop().await;

    // The minimum score is a setting too: at 2, eight random characters are enough.
    let mut s = settings(&db);
    s.password.password_min_score = 2;
    let app = spawn(s).await;
    app.register("bob", "Xk#9vQ!2").await.unwrap();
    assert_refused(
        app.register("carol", "Xk#9vQ!").await,
        Code::InvalidArgument,
        "PASSWORD_TOO_WEAK",
    );
    app.stop().await;

    // Below NIST's 8, or a score zxcvbn does not have: authd refuses to start, naming the
    // setting.
    for (setting, tweak) in [
        (
            "AUTHD_PASSWORD_MIN_LENGTH",
            (|s: &mut authd::config::ServeArgs| s.password.password_min_length = 7)
                as fn(&mut authd::config::ServeArgs),
        ),
        ("AUTHD_PASSWORD_MIN_SCORE", |s| {
            s.password.password_min_score = 5
        }),
    ] {
        let mut s = settings(&db);
        tweak(&mut s);
        match authd::server::Application::build(s).await {
            Ok(_) => panic!("{setting}: started"),
            Err(e) => assert!(e.to_string().contains(setting), "{e}"),
        }
    }
}

/// Users written by the first username rule (key = NFKC + lower case, before migration
/// 000004), among them two look-alikes that rule kept apart: after the upgrade every one
/// logs in with the name and password it always had, the new keys are computed, the older
/// look-alike owns the skeleton and the later one keeps a legacy key.
async fn users_of_the_first_username_rule_still_log_in_after_rekeying(b: Backend) {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Alias, Query};

    let Some(db) = TestDb::new(b).await else {
        return;
    };
    // The schema as the previous release left it.
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    migration::Migrator::up(&conn, Some(3)).await.unwrap();
    let hasher = authd::password::Hasher::new(256, 1, 1).unwrap();
    let hash = |p: &str| hasher.hash(secrecy::SecretString::from(p.to_owned()));
    let t0 = chrono::Utc::now() - chrono::Duration::days(30);
    // (name as registered, its first-rule key, password, age order)
    let old_users = [
        ("Alice", "alice", PASSWORD, 0),
        ("\u{0430}lice", "\u{0430}lice", PASSWORD, 1),
        ("John Smith", "john smith", PASSWORD, 2),
        // A password the policy would refuse today: old passwords keep working.
        ("Bob1", "bob1", "12345678", 3),
    ];
    let mut ids = Vec::new();
    for (name, key, password, age) in old_users {
        let id = uuid::Uuid::new_v4();
        let insert = Query::insert()
            .into_table(Alias::new("users"))
            .columns(
                [
                    "id",
                    "username",
                    "username_key",
                    "password_hash",
                    "created_at",
                    "disabled",
                ]
                .map(Alias::new),
            )
            .values_panic([
                id.into(),
                name.into(),
                key.into(),
                hash(password).await.unwrap().into(),
                (t0 + chrono::Duration::days(age)).into(),
                false.into(),
            ])
            .to_owned();
        conn.execute(&insert).await.unwrap();
        ids.push(id.to_string());
    }

    let app = spawn(settings(&db)).await;
    for (name, id, password) in [
        ("Alice", &ids[0], PASSWORD),
        ("alice", &ids[0], PASSWORD),
        ("\u{0430}lice", &ids[1], PASSWORD),
        ("John Smith", &ids[2], PASSWORD),
        ("john smith", &ids[2], PASSWORD),
        ("Bob1", &ids[3], "12345678"),
    ] {
        let pair = app.issue(name, password).await.unwrap();
        let claims = app.validate(&pair.access_token, "").await.unwrap();
        assert_eq!(&claims.sub, id, "{name:?}");
    }
    let keys = |users: Vec<authd::store::users::User>| {
        let mut k: Vec<(String, String, i16)> = users
            .into_iter()
            .map(|u| (u.id.to_string(), u.username_key, u.key_version))
            .collect();
        k.sort();
        k
    };
    let mut want = vec![
        (ids[0].clone(), "alice".to_owned(), 2),
        (ids[1].clone(), "legacy:\u{0430}lice".to_owned(), 2),
        (
            ids[2].clone(),
            authd::auth::Username::migrated_key("john smith").unwrap(),
            2,
        ),
        // The skeleton: `1` and `l` look alike.
        (ids[3].clone(), "bobl".to_owned(), 2),
    ];
    want.sort();
    let store = db.store().await;
    assert_eq!(keys(store.list_users().await.unwrap()), want);
    // The skeletons now guard the names: no new look-alike of either.
    for name in [
        "ALICE",
        "\u{0430}\u{04CF}\u{0456}\u{0441}\u{0435}",
        "bobl",
        "BOB1",
    ] {
        assert_refused(
            app.register(name, PASSWORD).await,
            Code::AlreadyExists,
            "USERNAME_TAKEN",
        );
    }

    // An authd of the previous release, still running during a rolling upgrade, writes a
    // first-rule row (it knows nothing of key_version): it logs in at once, and the next
    // start re-keys it.
    let carol = uuid::Uuid::new_v4();
    let insert = Query::insert()
        .into_table(Alias::new("users"))
        .columns(
            [
                "id",
                "username",
                "username_key",
                "password_hash",
                "created_at",
                "disabled",
            ]
            .map(Alias::new),
        )
        .values_panic([
            carol.into(),
            "Carol1".into(),
            "carol1".into(),
            hash(PASSWORD).await.unwrap().into(),
            chrono::Utc::now().into(),
            false.into(),
        ])
        .to_owned();
    conn.execute(&insert).await.unwrap();
    let pair = app.issue("carol1", PASSWORD).await.unwrap();
    assert_eq!(
        app.validate(&pair.access_token, "").await.unwrap().sub,
        carol.to_string()
    );
    app.stop().await;
    let app = spawn(settings(&db)).await;
    let carol_row = store.user_by_id(carol).await.unwrap().unwrap();
    assert_eq!(
        (carol_row.username_key.as_str(), carol_row.key_version),
        ("caroll", 2)
    );
    app.issue("Carol1", PASSWORD).await.unwrap();
    app.issue("\u{0430}lice", PASSWORD).await.unwrap();
    app.stop().await;
}
