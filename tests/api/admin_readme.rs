//! The README's admin walk-through ("Roles, service accounts and the admin API", its first
//! shell block), run as written against a real authd and the example: bootstrap an admin
//! with the CLI, create a service account, get its token, call the example's role-guarded
//! method with it, grant a role to a user.
use downstream::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_admin_walkthrough_runs_as_written() {
    if !have_grpcurl() {
        return;
    }
    let script = readme_sh_block("## Roles, service accounts and the admin API", 0);
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut s = settings(&db);
    s.jwt_secret = None;
    let app = spawn(s).await;
    app.register("bob", PASSWORD).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ds_addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let config = Config::with_authd(format!("http://{}", app.addr));
    let handle = tokio::spawn(async move {
        downstream::serve(listener, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let work = tempfile::tempdir().unwrap();
    let cli = format!("AUTHD_DATABASE_URL='{}' {AUTHD_BIN}", db.url);
    let script = format!(
        "cd '{}'\n{}",
        work.path().display(),
        script
            .replace("cargo run --release --", &cli)
            .replace("127.0.0.1:50051", &app.addr.to_string())
            .replace("127.0.0.1:50061", &ds_addr.to_string())
    );
    let stdout = run_script(&script).await;
    // Report answers the service account, by name, with the role it was given.
    assert!(stdout.contains("reports"), "{stdout}");
    assert!(stdout.contains("downstream:admin"), "{stdout}");
    // Bob has the role now; ListUsers shows him and the admin.
    let bob = stdout
        .split("\"username\": \"bob\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no bob in {stdout}"));
    assert!(bob.contains("downstream:admin"), "{stdout}");
    let _ = stop.send(());
    handle.await.unwrap();
    app.stop().await;
}
