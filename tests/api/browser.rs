//! The example web page (examples/web) in a real headless Chromium, against authd and the
//! downstream example over gRPC-Web: a page from an allowed origin registers, logs in, sees
//! its claims, is greeted by downstream, logs out and is refused; it refreshes its pair on its
//! own before the access token expires; a page from any other origin is stopped by the
//! browser's CORS check before its call is sent.
//!
//! Needs `examples/web/dist` (`npm --prefix examples/web ci && npm --prefix examples/web run
//! build`) and the Debian packages `chromium` and `chromium-driver`; without them the tests
//! skip with a note, except under CI (`CI` set, as `.ci/run` does), where they fail. `AUTHD_SCREENSHOT=1` saves the signed-in page to docs/web-page.png.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use thirtyfour::prelude::*;
use thirtyfour::stringmatch::StringMatch;
use thirtyfour::testing::run_browser_test;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

use crate::downstream::spawn_downstream;
use crate::helpers::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page gets to show an outcome (polled, not slept).
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_logs_in_greets_and_logs_out_over_grpc_web() {
    let Some((_page, origin, db, app)) = stage(|s| {
        // Ed25519 keys from the database: downstream verifies with authd's JWKS.
        s.jwt_secret = None;
    })
    .await
    else {
        return;
    };
    let authd_url = format!("http://{}", app.addr);
    let mut config = downstream::Config::with_authd(&authd_url);
    config.cors_allowed_origins = vec![origin.clone()];
    let svc = spawn_downstream(config).await;
    let url = format!("{origin}/?authd={authd_url}&downstream=http://{}", svc.addr);

    let browser = Browser::start().await;
    run_browser_test(browser.session(), |driver| async move {
        driver.goto(&url).await?;
        fill(&driver, "username", "wendy").await?;
        fill(&driver, "password", PASSWORD).await?;
        click(&driver, "register").await?;
        // Register, Issue, then Validate's claims on the page.
        shows(&driver, "claim-username", "wendy").await;
        shows(&driver, "status", "Logged in as wendy").await;
        let sub = text(&driver, "claim-sub").await?;
        uuid::Uuid::parse_str(&sub).expect("the claims show the user id");
        assert!(!text(&driver, "claim-exp").await?.is_empty());

        // downstream verifies the access token the page sends in `authorization: Bearer`.
        click(&driver, "hello").await?;
        shows(&driver, "greeting", "Hello, wendy!").await;
        if std::env::var("AUTHD_SCREENSHOT").is_ok_and(|v| v == "1") {
            let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/web-page.png");
            driver.screenshot(&png).await?;
        }

        // Refresh spends the refresh token for a new pair (the claims stay wendy's).
        click(&driver, "refresh").await?;
        shows(&driver, "status", "Tokens refreshed").await;
        shows(&driver, "claim-username", "wendy").await;

        click(&driver, "logout").await?;
        shows(&driver, "status", "Logged out").await;
        // The page holds no token now: downstream refuses the call.
        click(&driver, "hello").await?;
        shows(&driver, "error", "UNAUTHENTICATED").await;
        assert_eq!(text(&driver, "greeting").await?, "");
        Ok::<_, WebDriverError>(())
    })
    .await
    .unwrap();

    // One user, one session (the refresh rotated within it), and logout revoked it at authd.
    assert_eq!(count_rows(&db, "users").await, 1);
    assert_eq!(count_rows(&db, "sessions").await, 1);
    assert_eq!(
        count_rows(&db, "sessions WHERE revoked_at IS NULL").await,
        0
    );
    svc.stop().await;
    app.stop().await;
    browser.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_refreshes_the_pair_before_the_access_token_expires() {
    let Some((_page, origin, db, app)) = stage(|s| {
        // The page refreshes at 80% of this: after 1.6 s.
        s.access_ttl = Duration::from_secs(2);
    })
    .await
    else {
        return;
    };
    let url = format!("{origin}/?authd=http://{}", app.addr);

    let browser = Browser::start().await;
    run_browser_test(browser.session(), |driver| async move {
        driver.goto(&url).await?;
        fill(&driver, "username", "rita").await?;
        fill(&driver, "password", PASSWORD).await?;
        click(&driver, "register").await?;
        shows(&driver, "claim-username", "rita").await;
        let first_exp = text(&driver, "claim-exp").await?;
        // No click: the page's own timer spends the refresh token and shows the new claims.
        shows(
            &driver,
            "status",
            "Tokens refreshed before the access token expired",
        )
        .await;
        shows(&driver, "claim-username", "rita").await;
        assert_ne!(text(&driver, "claim-exp").await?, first_exp);
        Ok::<_, WebDriverError>(())
    })
    .await
    .unwrap();

    // Rotation within the one session: at least two refresh tokens were spent.
    assert_eq!(count_rows(&db, "sessions").await, 1);
    assert!(count_rows(&db, "refresh_tokens").await >= 2);
    app.stop().await;
    browser.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_from_another_origin_is_stopped_by_cors() {
    let Some((page, _allowed, db, app)) = stage(|_| {}).await else {
        return;
    };
    // The same files, but `localhost` is another origin than the allowed `127.0.0.1`.
    let url = format!(
        "http://localhost:{}/?authd=http://{}&downstream=http://127.0.0.1:9",
        page.addr.port(),
        app.addr
    );

    let browser = Browser::start().await;
    run_browser_test(browser.session(), |driver| async move {
        driver.goto(&url).await?;
        fill(&driver, "username", "mallory").await?;
        fill(&driver, "password", PASSWORD).await?;
        click(&driver, "register").await?;
        // fetch() rejects: the browser read no answer it was allowed to read.
        shows(&driver, "error", "Failed to fetch").await;
        let error = text(&driver, "error").await?;
        assert!(
            error.starts_with("UNKNOWN:") || error.starts_with("UNAVAILABLE:"),
            "{error}"
        );
        assert!(
            error.contains("CORS"),
            "the page names the likely cause: {error}"
        );
        assert_eq!(text(&driver, "claim-username").await?, "");
        Ok::<_, WebDriverError>(())
    })
    .await
    .unwrap();

    // A gRPC-Web call is always preflighted (its content type is not CORS-safelisted): the
    // refused preflight kept the Register from being sent, so the name is still free.
    assert_eq!(count_rows(&db, "users").await, 0);
    app.register("mallory", PASSWORD).await.unwrap();
    app.stop().await;
    browser.stop().await;
}

/// The page served from `http://127.0.0.1:<port>` (its origin, returned) and authd on
/// SQLite allowing that origin, with `tweak` applied to its settings; `None` when the
/// browser tests cannot run here (see `browser_prerequisites`).
async fn stage(
    tweak: impl FnOnce(&mut authd::config::ServeArgs),
) -> Option<(StaticSite, String, TestDb, TestApp)> {
    let dist = browser_prerequisites()?;
    let page = StaticSite::serve(&dist).await;
    let origin = format!("http://127.0.0.1:{}", page.addr.port());
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut s = settings(&db);
    s.cors_allowed_origins = vec![origin.clone()];
    tweak(&mut s);
    let app = spawn(s).await;
    Some((page, origin, db, app))
}

/// examples/web's build output, once the page is built and Chromium and ChromeDriver are
/// installed. `None` (with a note) when something is missing outside CI; under CI that
/// fails the test instead, naming what to install.
fn browser_prerequisites() -> Option<PathBuf> {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web/dist");
    let mut missing = Vec::new();
    if !dist.join("index.html").is_file() {
        missing.push(format!(
            "{} (build the page: `npm --prefix examples/web ci && npm --prefix examples/web \
             run build`)",
            dist.display()
        ));
    }
    for (bin, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        if !Path::new(bin).is_file() {
            missing.push(format!("{bin} (`apt-get install -y {package}`)"));
        }
    }
    if missing.is_empty() {
        return Some(dist);
    }
    let missing = missing.join("; ");
    assert!(!in_ci(), "the browser tests need {missing}");
    eprintln!("skipping: the browser tests need {missing}");
    None
}

/// A static file server for a directory (read once into memory) on 127.0.0.1:0.
struct StaticSite {
    addr: SocketAddr,
}

impl StaticSite {
    async fn serve(dir: &Path) -> Self {
        let mut files = HashMap::new();
        collect(dir, dir, &mut files);
        let files = Arc::new(files);
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let files = files.clone();
            async move { file_response(&files, uri.path()) }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr }
    }
}

/// Every file under `dir`, keyed by its URL path (`/assets/index-abc.js`).
fn collect(root: &Path, dir: &Path, files: &mut HashMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy();
            files.insert(format!("/{rel}"), std::fs::read(&path).unwrap());
        }
    }
}

fn file_response(files: &HashMap<String, Vec<u8>>, path: &str) -> Response {
    let path = if path == "/" { "/index.html" } else { path };
    let Some(body) = files.get(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    ([(header::CONTENT_TYPE, content_type)], body.clone()).into_response()
}

/// chromedriver on a port of its choosing, driving headless Chromium.
struct Browser {
    driver: tokio::process::Child,
    url: String,
}

impl Browser {
    async fn start() -> Self {
        let mut driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // "ChromeDriver was started successfully on port 41167."
        let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("chromedriver exited before saying its port");
            if let Some(rest) = line.split(" on port ").nth(1)
                && line.contains("started successfully")
            {
                break rest.trim_end_matches('.').parse::<u16>().unwrap();
            }
        };
        // Keep reading so chromedriver never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            driver,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A new headless Chromium session.
    fn session(&self) -> impl IntoFuture<Output = WebDriverResult<WebDriver>> + use<> {
        let url = self.url.clone();
        async move {
            let mut caps = DesiredCapabilities::chrome();
            caps.set_binary(CHROMIUM)?;
            // Headless as root; and no calls home (sync, updates, QUIC), which a closed
            // network refuses, many at a time.
            for arg in [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=900,880",
            ] {
                caps.add_arg(arg)?;
            }
            WebDriver::new(url, caps).await
        }
    }

    async fn stop(mut self) {
        let _ = self.driver.kill().await;
    }
}

async fn fill(driver: &WebDriver, id: &str, value: &str) -> WebDriverResult<()> {
    let input = driver.query(By::Id(id)).wait(WAIT, POLL).first().await?;
    input.clear().await?;
    input.send_keys(value).await
}

/// Click a button once it is enabled (the page disables them while a call runs).
async fn click(driver: &WebDriver, id: &str) -> WebDriverResult<()> {
    let button = driver.query(By::Id(id)).wait(WAIT, POLL).first().await?;
    button.wait_until().wait(WAIT, POLL).clickable().await?;
    button.click().await
}

async fn text(driver: &WebDriver, id: &str) -> WebDriverResult<String> {
    driver.find(By::Id(id)).await?.text().await
}

/// Wait until `#id` shows `needle`; if it never does, fail with what the page says.
async fn shows(driver: &WebDriver, id: &str, needle: &str) {
    let found = driver
        .query(By::Id(id))
        .with_text(StringMatch::new(needle).partial())
        .desc(&format!("#{id} showing {needle:?}"))
        .wait(WAIT, POLL)
        .first()
        .await;
    if let Err(e) = found {
        let status = text(driver, "status").await.unwrap_or_default();
        let error = text(driver, "error").await.unwrap_or_default();
        panic!("#{id} never showed {needle:?} ({e}); #status: {status:?}, #error: {error:?}");
    }
}
