//! End-to-end tests: the real authd on 127.0.0.1:0, over SQLite and PostgreSQL, talked to
//! with the generated tonic client (and grpcurl, and the CLI binary).

// Test and bench code may unwrap and panic: a failure there is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod abuse;
mod admin_cli;
mod admin_gate;
mod admin_readme;
mod admin_users;
mod browser;
mod change_password;
mod cli;
mod compose;
mod container;
mod deploy;
mod docs;
mod downstream;
mod grpcurl;
mod interop;
mod logs;
mod refresh;
mod register;
mod restart;
mod roles_client;
mod sealed_keys;
mod secrets;
mod service_accounts;
mod shutdown;
mod throttle;
mod tls;
mod tls_rotation;
mod validate;
mod validate_layer;
mod web;
mod web_readme;
