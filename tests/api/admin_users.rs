//! The admin API on users: create, get, list, disable, enable, roles, password, sessions,
//! delete; what bad input gets, and that it changes nothing.
use std::collections::HashSet;
use std::time::Duration;

use authd::proto::{
    CreateUserRequest, ListServiceAccountsRequest, ListUsersRequest, SetPasswordRequest,
    SetRolesRequest, User,
};
use tonic::Code;

use crate::helpers::*;
use crate::on_both;

on_both!(
    create_and_get_users_and_what_bad_input_gets,
    list_users_pages_through_everyone_once_in_a_stable_order,
    a_disabled_user_cannot_log_in_and_their_tokens_are_refused,
    set_roles_reaches_new_tokens_and_leaves_old_ones_alone,
    set_password_ends_every_session_of_the_user,
    list_and_revoke_a_users_sessions,
    a_deleted_users_tokens_are_refused_everywhere_and_the_name_is_free,
);

const NEW_PASSWORD: &str = "a different horse, battery and staple";

async fn create_and_get_users_and_what_bad_input_gets(b: Backend) {
    let Some((db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    let carol = admin
        .create_user("Carol", &["billing:write", "billing:read", "billing:read"])
        .await
        .unwrap();
    uuid::Uuid::parse_str(&carol.user_id).unwrap();
    assert_eq!(carol.username, "Carol");
    // Sorted, without duplicates.
    assert_eq!(carol.roles, ["billing:read", "billing:write"]);
    assert!(!carol.disabled);
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - 60..=now + 1).contains(&carol.created_at),
        "{carol:?}"
    );

    // By id and by name (any spelling of it) it is the same user.
    assert_eq!(admin.get_user(by_id(&carol.user_id)).await.unwrap(), carol);
    assert_eq!(admin.get_user(by_name("carol")).await.unwrap(), carol);
    // The user logs in with the password the admin set, and their token has the roles.
    let pair = app.issue("carol", PASSWORD).await.unwrap();
    let claims = app.validate(&pair.access_token, "").await.unwrap();
    assert_eq!(claims.sub, carol.user_id);
    assert_eq!(claims.roles, ["billing:read", "billing:write"]);

    let users = count_rows(&db, "users").await;
    let create = |name: &str, password: &str, roles: &[&str]| {
        let request = admin.req(CreateUserRequest {
            username: name.into(),
            password: password.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        });
        let mut api = admin.api();
        async move { api.create_user(request).await }
    };
    assert_refused(
        create("dave", "password", &[]).await,
        Code::InvalidArgument,
        "PASSWORD_TOO_WEAK",
    );
    for bad in ["billing read", "", ":x", "é", &"r".repeat(65)] {
        let s = assert_refused(
            create("dave", PASSWORD, &["ok:role", bad]).await,
            Code::InvalidArgument,
            "INVALID_ROLE",
        );
        assert!(!s.message().contains(PASSWORD), "{s:?}");
    }
    let too_many: Vec<String> = (0..33).map(|i| format!("r{i}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    assert_refused(
        create("dave", PASSWORD, &too_many).await,
        Code::InvalidArgument,
        "INVALID_ROLE",
    );
    assert_refused(
        create("bad name!", PASSWORD, &[]).await,
        Code::InvalidArgument,
        "INVALID_USERNAME",
    );
    assert_refused(
        create("CAROL", PASSWORD, &[]).await,
        Code::AlreadyExists,
        "USERNAME_TAKEN",
    );
    // None of the refusals stored anything.
    assert_eq!(count_rows(&db, "users").await, users);
    assert_refused(
        admin.get_user(by_name("dave")).await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    assert_eq!(
        admin.get_user(by_id(&carol.user_id)).await.unwrap(),
        carol,
        "a refused duplicate leaves the first alone"
    );

    // Unknown users, and references that are not references.
    assert_refused(
        admin.get_user(by_name("nobody")).await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    assert_refused(
        admin
            .get_user(by_id(&uuid::Uuid::new_v4().to_string()))
            .await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    assert_refused(
        admin.get_user(by_id("carol")).await,
        Code::InvalidArgument,
        "INVALID_INPUT",
    );
    assert_refused(
        admin
            .api()
            .get_user(admin.req(authd::proto::UserRef { user: None }))
            .await,
        Code::InvalidArgument,
        "INVALID_INPUT",
    );
    app.stop().await;
}

async fn list_users(admin: &Admin, page_size: i32, page_token: &str) -> (Vec<User>, String) {
    let r = admin
        .api()
        .list_users(admin.req(ListUsersRequest {
            page_size,
            page_token: page_token.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    (r.users, r.next_page_token)
}

/// Every page from the first: the users and how many pages there were.
async fn all_pages(admin: &Admin, page_size: i32) -> (Vec<User>, usize) {
    let (mut users, mut token) = list_users(admin, page_size, "").await;
    let mut pages = 1;
    while !token.is_empty() {
        let (page, next) = list_users(admin, page_size, &token).await;
        assert!(!page.is_empty(), "a page token led to an empty page");
        assert!(page.len() <= page_size as usize);
        users.extend(page);
        token = next;
        pages += 1;
    }
    (users, pages)
}

async fn list_users_pages_through_everyone_once_in_a_stable_order(b: Backend) {
    let Some((_db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    for name in ["uma", "vic", "wes", "xia"] {
        admin.create_user(name, &[]).await.unwrap();
    }
    let (paged, pages) = all_pages(&admin, 2).await;
    assert_eq!(pages, 3);
    let names: Vec<&str> = paged.iter().map(|u| u.username.as_str()).collect();
    let unique: HashSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(
        unique,
        HashSet::from([ADMIN, "uma", "vic", "wes", "xia"]),
        "{names:?}"
    );
    // Creation order, the same every time and whatever the page size.
    assert_eq!(names, [ADMIN, "uma", "vic", "wes", "xia"]);
    assert!(paged.windows(2).all(|w| w[0].created_at <= w[1].created_at));
    assert_eq!(all_pages(&admin, 2).await.0, paged);
    assert_eq!(all_pages(&admin, 1).await.0, paged);
    let (one_page, next) = list_users(&admin, 0, "").await;
    assert_eq!((one_page, next.as_str()), (paged.clone(), ""));
    assert_eq!(list_users(&admin, 5, "").await.1, "", "no empty last page");

    // Deleting the user a page ended on does not lose the users after it.
    let (first, token) = list_users(&admin, 2, "").await;
    admin
        .api()
        .delete_user(admin.req(by_id(&first[1].user_id)))
        .await
        .unwrap();
    let (rest, _) = list_users(&admin, 10, &token).await;
    assert_eq!(rest, paged[2..]);

    // Page tokens authd did not issue, including another list's.
    let a1 = admin.create_service_account("one", &[]).await.unwrap();
    admin.create_service_account("two", &[]).await.unwrap();
    let accounts_token = admin
        .api()
        .list_service_accounts(admin.req(ListServiceAccountsRequest {
            page_size: 1,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert!(!accounts_token.is_empty());
    let mut forged = token.clone();
    forged.push('x');
    for bad in [
        "not a page token",
        "dTE6MTox",
        &forged,
        &accounts_token,
        &a1.client_id,
    ] {
        assert_refused(
            admin
                .api()
                .list_users(admin.req(ListUsersRequest {
                    page_size: 2,
                    page_token: bad.into(),
                }))
                .await,
            Code::InvalidArgument,
            "PAGE_TOKEN_INVALID",
        );
    }
    assert_refused(
        admin
            .api()
            .list_service_accounts(admin.req(ListServiceAccountsRequest {
                page_size: 1,
                page_token: token,
            }))
            .await,
        Code::InvalidArgument,
        "PAGE_TOKEN_INVALID",
    );
    assert_refused(
        admin
            .api()
            .list_users(admin.req(ListUsersRequest {
                page_size: -1,
                page_token: String::new(),
            }))
            .await,
        Code::InvalidArgument,
        "INVALID_INPUT",
    );
    app.stop().await;
}

async fn a_disabled_user_cannot_log_in_and_their_tokens_are_refused(b: Backend) {
    let Some((_db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    let pair = app.login("erin").await;
    let disabled = admin
        .api()
        .disable_user(admin.req(by_name("erin")))
        .await
        .unwrap()
        .into_inner();
    assert!(disabled.disabled);
    assert_eq!(disabled.username, "erin");
    assert!(admin.get_user(by_name("erin")).await.unwrap().disabled);
    assert_refused(
        app.issue("erin", PASSWORD).await,
        Code::Unauthenticated,
        "USER_DISABLED",
    );
    // This instance applied it at once.
    assert_refused(
        app.validate(&pair.access_token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    app.refresh(&pair.refresh_token).await.unwrap_err();
    // Disabling twice is no error.
    admin
        .api()
        .disable_user(admin.req(by_name("erin")))
        .await
        .unwrap();

    let enabled = admin
        .api()
        .enable_user(admin.req(by_id(&disabled.user_id)))
        .await
        .unwrap()
        .into_inner();
    assert!(!enabled.disabled);
    let again = app.issue("erin", PASSWORD).await.unwrap();
    app.validate(&again.access_token, "").await.unwrap();
    // The sessions disabling ended stay ended.
    app.refresh(&pair.refresh_token).await.unwrap_err();

    for r in [by_name("nobody"), by_id(&uuid::Uuid::new_v4().to_string())] {
        assert_refused(
            admin.api().disable_user(admin.req(r.clone())).await,
            Code::NotFound,
            "USER_NOT_FOUND",
        );
        assert_refused(
            admin.api().enable_user(admin.req(r)).await,
            Code::NotFound,
            "USER_NOT_FOUND",
        );
    }
    app.stop().await;
}

async fn set_roles(admin: &Admin, who: &str, roles: &[&str]) -> Result<User, tonic::Status> {
    admin
        .api()
        .set_roles(admin.req(SetRolesRequest {
            user: Some(by_name(who)),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }))
        .await
        .map(|r| r.into_inner())
}

async fn set_roles_reaches_new_tokens_and_leaves_old_ones_alone(b: Backend) {
    let Some((_db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    let old = app.login("fay").await;
    assert!(
        app.validate(&old.access_token, "")
            .await
            .unwrap()
            .roles
            .is_empty()
    );

    let u = set_roles(&admin, "fay", &["reports:read", "billing:read"])
        .await
        .unwrap();
    assert_eq!(u.roles, ["billing:read", "reports:read"]);
    assert_eq!(admin.get_user(by_name("fay")).await.unwrap().roles, u.roles);

    // The next Issue carries them, in the token and in Validate's answer.
    let new = app.issue("fay", PASSWORD).await.unwrap();
    assert_eq!(
        jwt_payload(&new.access_token)["roles"],
        serde_json::json!(["billing:read", "reports:read"])
    );
    assert_eq!(
        app.validate(&new.access_token, "").await.unwrap().roles,
        u.roles
    );
    // The old token is unchanged (and still valid); its next Refresh carries them too.
    assert!(
        app.validate(&old.access_token, "")
            .await
            .unwrap()
            .roles
            .is_empty()
    );
    let refreshed = app.refresh(&old.refresh_token).await.unwrap();
    assert_eq!(
        app.validate(&refreshed.access_token, "")
            .await
            .unwrap()
            .roles,
        u.roles
    );

    // A bad role refuses the whole set; nothing changes.
    assert_refused(
        set_roles(&admin, "fay", &["admin", "not a role"]).await,
        Code::InvalidArgument,
        "INVALID_ROLE",
    );
    assert_eq!(admin.get_user(by_name("fay")).await.unwrap().roles, u.roles);
    assert_refused(
        set_roles(&admin, "nobody", &["x"]).await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    assert_refused(
        admin
            .api()
            .set_roles(admin.req(SetRolesRequest {
                user: None,
                roles: vec!["x".into()],
            }))
            .await,
        Code::InvalidArgument,
        "INVALID_INPUT",
    );

    // Roles are case-sensitive, and an empty set clears them.
    let u = set_roles(&admin, "fay", &["Billing:Read", "billing:read"])
        .await
        .unwrap();
    assert_eq!(u.roles, ["Billing:Read", "billing:read"]);
    assert!(
        set_roles(&admin, "fay", &[])
            .await
            .unwrap()
            .roles
            .is_empty()
    );
    let none = app.issue("fay", PASSWORD).await.unwrap();
    assert!(
        app.validate(&none.access_token, "")
            .await
            .unwrap()
            .roles
            .is_empty()
    );
    app.stop().await;
}

async fn set_password(admin: &Admin, who: &str, password: &str) -> Result<User, tonic::Status> {
    admin
        .api()
        .set_password(admin.req(SetPasswordRequest {
            user: Some(by_name(who)),
            new_password: password.into(),
        }))
        .await
        .map(|r| r.into_inner())
}

async fn set_password_ends_every_session_of_the_user(b: Backend) {
    let Some((_db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    let phone = app.login("gus").await;
    let laptop = app.issue("gus", PASSWORD).await.unwrap();

    for weak in ["short", "password", "gus-gus-gus"] {
        assert_refused(
            set_password(&admin, "gus", weak).await,
            Code::InvalidArgument,
            "PASSWORD_TOO_WEAK",
        );
    }
    // Nothing changed: the sessions live, the old password works.
    let phone = app.refresh(&phone.refresh_token).await.unwrap();
    app.validate(&laptop.access_token, "").await.unwrap();
    let desk = app.issue("gus", PASSWORD).await.unwrap();

    let u = set_password(&admin, "gus", NEW_PASSWORD).await.unwrap();
    assert_eq!(u.username, "gus");
    for p in [&phone, &laptop, &desk] {
        assert_session_ended(&app, p).await;
    }
    assert_refused(
        app.issue("gus", PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    let fresh = app.issue("gus", NEW_PASSWORD).await.unwrap();
    app.validate(&fresh.access_token, "").await.unwrap();
    assert_refused(
        set_password(&admin, "nobody", NEW_PASSWORD).await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    app.stop().await;
}

async fn list_and_revoke_a_users_sessions(b: Backend) {
    let Some((_db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    let first = app.login("hal").await;
    let second = app.issue("hal", PASSWORD).await.unwrap();
    let other = app.login("ida").await;
    let list = |who| {
        let request = admin.req(who);
        let mut api = admin.api();
        async move {
            api.list_sessions(request)
                .await
                .map(|r| r.into_inner().sessions)
        }
    };

    let sessions = list(by_name("hal")).await.unwrap();
    let listed: HashSet<String> = sessions.iter().map(|s| s.session_id.clone()).collect();
    let expected: HashSet<String> = [&first, &second]
        .iter()
        .map(|p| {
            jwt_payload(&p.access_token)["sid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(listed, expected);
    for s in &sessions {
        assert_eq!(s.audience, "authd");
        assert!(s.created_at <= s.expires_at, "{s:?}");
        assert!(s.expires_at > chrono::Utc::now().timestamp(), "{s:?}");
    }
    // A logged-out session is not listed.
    app.revoke(&second.refresh_token).await.unwrap();
    assert_eq!(list(by_name("hal")).await.unwrap().len(), 1);

    let revoked = admin
        .api()
        .revoke_user_sessions(admin.req(by_name("HAL")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.revoked, 1);
    assert!(list(by_name("hal")).await.unwrap().is_empty());
    assert_session_ended(&app, &first).await;
    // Another user's session is untouched; hal can log in again.
    app.refresh(&other.refresh_token).await.unwrap();
    app.issue("hal", PASSWORD).await.unwrap();
    let again = admin
        .api()
        .revoke_user_sessions(admin.req(by_name("ida")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.revoked, 1);

    assert_refused(
        list(by_name("nobody")).await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    assert_refused(
        admin
            .api()
            .revoke_user_sessions(admin.req(by_name("nobody")))
            .await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    app.stop().await;
}

async fn a_deleted_users_tokens_are_refused_everywhere_and_the_name_is_free(b: Backend) {
    let Some((db, app, admin)) = start_admin(b, |s| {
        s.revocation_refresh = Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    let mut s = settings(&db);
    s.revocation_refresh = Duration::from_millis(200);
    // A second instance on the same database (PostgreSQL; SQLite serves one instance).
    let other = match b {
        Backend::Postgres => Some(spawn(s).await),
        Backend::Sqlite => None,
    };
    let pair = app.login("jan").await;
    let second = app.issue("jan", PASSWORD).await.unwrap();
    let jan = admin.get_user(by_name("jan")).await.unwrap();
    if let Some(other) = &other {
        other.validate(&pair.access_token, "").await.unwrap();
    }

    let deleted = admin
        .api()
        .delete_user(admin.req(by_name("jan")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.sessions_revoked, 2);
    for p in [&pair, &second] {
        assert_refused(
            app.validate(&p.access_token, "").await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
        app.refresh(&p.refresh_token).await.unwrap_err();
    }
    if let Some(other) = &other {
        eventually(Duration::from_secs(10), || async {
            other.validate(&pair.access_token, "").await.is_err()
        })
        .await;
        assert_refused(
            other.validate(&second.access_token, "").await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
    }
    assert_refused(
        app.issue("jan", PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    for r in [by_name("jan"), by_id(&jan.user_id)] {
        assert_refused(
            admin.get_user(r.clone()).await,
            Code::NotFound,
            "USER_NOT_FOUND",
        );
        assert_refused(
            admin.api().delete_user(admin.req(r.clone())).await,
            Code::NotFound,
            "USER_NOT_FOUND",
        );
        assert_refused(
            admin.api().enable_user(admin.req(r)).await,
            Code::NotFound,
            "USER_NOT_FOUND",
        );
    }
    let (users, _) = list_users(&admin, 0, "").await;
    assert!(users.iter().all(|u| u.username != "jan"), "{users:?}");

    // The name is free again: a new user, with a new id, whom the old tokens do not name.
    let id = app.register("Jan", PASSWORD).await.unwrap();
    assert_ne!(id, jan.user_id);
    let new = app.issue("jan", PASSWORD).await.unwrap();
    assert_eq!(app.validate(&new.access_token, "").await.unwrap().sub, id);
    app.validate(&pair.access_token, "").await.unwrap_err();
    assert_refused(
        admin.get_user(by_id(&jan.user_id)).await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    // And the admin API can create it too, once that user is deleted in turn.
    admin
        .api()
        .delete_user(admin.req(by_id(&id)))
        .await
        .unwrap();
    admin.create_user("jan", &["x"]).await.unwrap();
    if let Some(other) = other {
        other.stop().await;
    }
    app.stop().await;
}
