//! A restart keeps the users and the generated signing key.
use crate::helpers::*;
use crate::on_both;

on_both!(restart_keeps_users_and_the_generated_key);

async fn restart_keeps_users_and_the_generated_key(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let generated = || {
        let mut s = settings(&db);
        s.jwt_secret = None;
        s
    };
    let app = spawn(generated()).await;
    let pair = app.login("henry").await;
    app.validate(&pair.access_token, "").await.unwrap();
    app.stop().await;
    let keys = db.store().await.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "one generated key");

    let app = spawn(generated()).await;
    // A token from before the restart still verifies: same key.
    app.validate(&pair.access_token, "").await.unwrap();
    // The user is still there.
    let again = app.issue("henry", PASSWORD).await.unwrap();
    app.validate(&again.access_token, "").await.unwrap();
    // So is the session: the refresh token still works.
    app.refresh(&pair.refresh_token).await.unwrap();
    app.stop().await;
    assert_eq!(
        db.store().await.signing_keys().await.unwrap().len(),
        1,
        "no second key"
    );
}
