//! authd: a standalone authentication service over gRPC.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)]

pub mod api;
pub mod auth;
pub mod config;
pub mod healthcheck;
pub mod keys;
pub mod metrics;
pub mod password;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod token;

/// Generated from `proto/authd/v1/auth.proto`.
pub mod proto {
    #![allow(clippy::all, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    tonic::include_proto!("authd.v1");

    /// Descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/authd_descriptor.bin"));
}
