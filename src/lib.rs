//! authd: a standalone authentication service over gRPC.

pub(crate) mod api;
pub mod auth;
pub mod config;
pub mod healthcheck;
pub mod keys;
pub mod metrics;
pub mod password;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub(crate) mod token;

/// The contract of `proto/authd/v1/auth.proto`: the messages and the `AuthServiceClient`
/// are authd-client's (generated once, there); the server trait is generated here.
pub mod proto {
    #![allow(clippy::all, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    pub use authd_client::proto::*;
    // `auth_service_server`, naming the messages above by their `authd_client` path.
    tonic::include_proto!("authd.v1");

    /// Descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/authd_descriptor.bin"));
}
