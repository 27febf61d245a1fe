//! Writes the descriptor set of the public contract that gRPC reflection serves, and
//! generates the `AuthService` server trait with protox (pure Rust: no system `protoc`).
//! The messages are not generated here: they are authd-client's (`authd_client::proto`),
//! one set of types for the server, the client and their conversions.
use std::{env, fs, path::PathBuf};

use protox::prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/authd/v1/auth.proto", "proto/authd/v1/admin.proto"];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("authd_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // The client is authd-client's too.
        .build_client(false)
        .extern_path(".authd.v1", "::authd_client::proto")
        .compile_fds(fds)?;
    Ok(())
}
