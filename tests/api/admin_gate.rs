//! The admin gate: every method of `authd.v1.AdminService`, as the service descriptor lists
//! them (so a method added later is checked too), refuses a caller without a token, with a
//! token that is not one, and with a valid token that lacks the admin role.
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::helpers::*;
use crate::on_both;

on_both!(
    every_admin_method_refuses_callers_without_the_admin_role,
    the_admin_role_is_a_setting_and_a_revoked_admin_token_is_refused,
);

const SERVICE: &str = "AdminService";

/// The methods of `authd.v1.AdminService` in the descriptor set authd serves by reflection.
fn admin_methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(authd::proto::FILE_DESCRIPTOR_SET).unwrap();
    let methods: Vec<String> = set
        .file
        .iter()
        .filter(|f| f.package() == "authd.v1")
        .flat_map(|f| &f.service)
        .filter(|s| s.name() == SERVICE)
        .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
        .collect();
    // The 14 of issue 12; fewer means the descriptor was not found, not that all passed.
    assert!(methods.len() >= 14, "{methods:?}");
    methods
}

/// Call `/authd.v1.AdminService/{method}` with an empty message (`()`: every request message
/// decodes from no bytes) and `authorization` set to `auth`, if given. The answer's body
/// is not looked at: only whether the call got through.
async fn call(channel: &Channel, method: &str, auth: Option<&str>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(value) = auth {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    let path =
        tonic::codegen::http::uri::PathAndQuery::try_from(format!("/authd.v1.{SERVICE}/{method}"))
            .unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    grpc.unary(request, path, codec).await.map(|_| ())
}

async fn channel(app: &TestApp) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn every_admin_method_refuses_callers_without_the_admin_role(b: Backend) {
    let Some((db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    // A valid user token without the role; and a service account's token with another role.
    let user = app.login("mallory").await.access_token;
    let account = admin
        .create_service_account("robot", &["billing:read"])
        .await
        .unwrap();
    let service = app
        .issue_service_token(&account.client_id, &account.client_secret)
        .await
        .unwrap()
        .access_token;
    let ch = channel(&app).await;
    let users_before = count_rows(&db, "users").await;

    let methods = admin_methods();
    for m in &methods {
        assert_refused(
            call(&ch, m, None).await,
            Code::Unauthenticated,
            "TOKEN_MISSING",
        );
        // Not a bearer token at all.
        assert_refused(
            call(&ch, m, Some(&format!("Basic {}", "YWRtaW46cGFzcw=="))).await,
            Code::Unauthenticated,
            "TOKEN_MISSING",
        );
        assert_refused(
            call(&ch, m, Some("Bearer")).await,
            Code::Unauthenticated,
            "TOKEN_MISSING",
        );
        let garbage = call(&ch, m, Some("Bearer not.a.jwt")).await.unwrap_err();
        assert_eq!(garbage.code(), Code::Unauthenticated, "{m}: {garbage:?}");
        assert_eq!(reason(&garbage), "TOKEN_MALFORMED", "{m}: {garbage:?}");
        for token in [&user, &service] {
            let s = assert_refused(
                call(&ch, m, Some(&format!("Bearer {token}"))).await,
                Code::PermissionDenied,
                "ROLE_REQUIRED",
            );
            assert!(s.message().contains(ADMIN_ROLE), "{m}: {s:?}");
        }
        // The admin gets through to the method: its empty request may be refused as
        // invalid or not found, never by the gate, and the method exists.
        match call(&ch, m, Some(&format!("Bearer {}", admin.token))).await {
            Ok(()) => {}
            Err(s) => assert!(
                matches!(s.code(), Code::InvalidArgument | Code::NotFound),
                "{m} with the admin's token: {s:?}"
            ),
        }
    }
    // Nothing the refused calls asked for happened.
    assert_eq!(count_rows(&db, "users").await, users_before);
    assert_eq!(count_rows(&db, "service_accounts").await, 1);
    app.stop().await;
}

async fn the_admin_role_is_a_setting_and_a_revoked_admin_token_is_refused(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    add_admin_with_cli(&db).await;
    authd_cli_ok(
        &db,
        &["user", "add", "root", "--role", "ops:root"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let mut s = settings(&db);
    s.admin_role = "ops:root".into();
    let app = spawn(s).await;
    let list = |admin: Admin| async move {
        admin
            .api()
            .list_users(admin.req(authd::proto::ListUsersRequest::default()))
            .await
    };
    // `authd:admin` is only a name once the setting says otherwise.
    let s = assert_refused(
        list(Admin::login(&app, ADMIN).await).await,
        Code::PermissionDenied,
        "ROLE_REQUIRED",
    );
    assert!(s.message().contains("ops:root"), "{s:?}");
    let root = Admin::login(&app, "root").await;
    let users = list(root.clone()).await.unwrap().into_inner().users;
    assert_eq!(users.len(), 2);

    // A second admin, disabled by the first: their token is refused at once.
    let other = root.create_user("deputy", &["ops:root"]).await.unwrap();
    let deputy = Admin::login(&app, "deputy").await;
    list(deputy.clone()).await.unwrap();
    root.api()
        .disable_user(root.req(by_id(&other.user_id)))
        .await
        .unwrap();
    assert_refused(
        list(deputy.clone()).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    // Taking the role away reaches the admin's next token.
    root.api()
        .enable_user(root.req(by_name("deputy")))
        .await
        .unwrap();
    root.api()
        .set_roles(root.req(authd::proto::SetRolesRequest {
            user: Some(by_name("deputy")),
            roles: vec![],
        }))
        .await
        .unwrap();
    assert_refused(
        list(Admin::login(&app, "deputy").await).await,
        Code::PermissionDenied,
        "ROLE_REQUIRED",
    );
    app.stop().await;
}

/// grpcurl finds the admin service by reflection and calls it with an admin's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_explores_and_calls_the_admin_service() {
    if !have_grpcurl() {
        return;
    }
    let Some((_db, app, admin)) = start_admin(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let addr = app.addr.to_string();
    let listed = run_script(&format!("grpcurl -plaintext {addr} list")).await;
    assert!(listed.contains("authd.v1.AdminService"), "{listed}");
    let described = run_script(&format!(
        "grpcurl -plaintext {addr} describe authd.v1.AdminService"
    ))
    .await;
    for m in admin_methods() {
        assert!(described.contains(&format!("rpc {m}")), "{m}: {described}");
    }
    let users = run_script(&format!(
        "grpcurl -plaintext -H 'authorization: Bearer {}' -d '{{\"page_size\": 10}}' {addr} \
         authd.v1.AdminService/ListUsers",
        admin.token
    ))
    .await;
    let users: serde_json::Value = serde_json::from_str(&users).unwrap();
    assert_eq!(users["users"][0]["username"], ADMIN, "{users}");
    assert_eq!(users["users"][0]["roles"][0], ADMIN_ROLE, "{users}");
    app.stop().await;
}
