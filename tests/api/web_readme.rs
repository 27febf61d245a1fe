//! The README's gRPC-Web section ("Browsers and phones"): its start command's CORS setting
//! lets exactly the origin it names in, and its curl calls run as written against the real
//! server and show what the text says they show.
use crate::helpers::*;

const SECTION: &str = "## Browsers and phones";

/// The value `VAR=value` sets in `script`.
fn env_value<'a>(script: &'a str, var: &str) -> &'a str {
    script
        .split(&format!("{var}="))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{var} not set in {script}"))
}

/// `curl -si` of a preflight from `origin`: the status line and headers.
async fn preflight(addr: &str, origin: &str) -> String {
    run_script(&format!(
        "curl -si -X OPTIONS -H 'Origin: {origin}' -H 'Access-Control-Request-Method: POST' \
         -H 'Access-Control-Request-Headers: content-type,authorization' \
         http://{addr}/authd.v1.AuthService/Validate"
    ))
    .await
    .to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_grpc_web_curl_calls_run_as_written() {
    let start = readme_sh_block(SECTION, 0);
    let origin = env_value(&start, "AUTHD_CORS_ALLOWED_ORIGINS");
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/authd.db?mode=rwc", dir.path().display());
    let authd = ServerProcess::start(&[
        ("AUTHD_DATABASE_URL", db.as_str()),
        (
            "AUTHD_ALLOW_REGISTRATION",
            env_value(&start, "AUTHD_ALLOW_REGISTRATION"),
        ),
        ("AUTHD_CORS_ALLOWED_ORIGINS", origin),
    ])
    .await;
    let addr = authd.addr.to_string();

    // The origin the command names is let in; a look-alike one is not, and gets no CORS
    // header at all.
    let allowed = preflight(&addr, origin).await;
    assert!(allowed.starts_with("http/1.1 200"), "{allowed}");
    assert!(
        allowed.contains(&format!("access-control-allow-origin: {origin}")),
        "{allowed}"
    );
    assert!(
        !allowed.contains("access-control-allow-credentials"),
        "{allowed}"
    );
    let other = preflight(&addr, "http://localhost:5173").await;
    assert!(other.starts_with("http/1.1 403"), "{other}");
    assert!(!other.contains("access-control-"), "{other}");

    // GetJwks: a data frame with the key set, then the trailer frame with grpc-status:0.
    let jwks = run_script(&readme_sh_block(SECTION, 1).replace("127.0.0.1:50051", &addr)).await;
    assert!(jwks.contains(r#"{"keys":[{"#), "{jwks}");
    assert!(jwks.contains(r#""alg":"EdDSA""#), "{jwks}");
    assert!(jwks.ends_with("grpc-status:0^M\n"), "{jwks:?}");

    // Validate of an empty token: a trailers-only refusal whose details name the reason.
    let refusal = run_script(&readme_sh_block(SECTION, 2).replace("127.0.0.1:50051", &addr)).await;
    assert!(refusal.contains("grpc-status: 16\r\n"), "{refusal}");
    let mut headers = http::HeaderMap::new();
    for line in refusal.lines() {
        if let Some((name, value)) = line.split_once(": ")
            && name.starts_with("grpc-")
        {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.trim().parse().unwrap(),
            );
        }
    }
    let status = tonic::Status::from_header_map(&headers)
        .unwrap_or_else(|| panic!("no status in {refusal}"));
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(reason(&status), "TOKEN_MALFORMED");
    let _ = authd.terminate().await;
}
