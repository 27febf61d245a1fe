//! With the `grpc` feature: compiles authd's public contract (`../proto`) with protox (pure
//! Rust: no system `protoc`) into the `AuthService` client. The server half is generated
//! too, into its own file, for the stand-in authd of `test_util` and this crate's tests.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "grpc")]
    grpc()?;
    Ok(())
}

#[cfg(feature = "grpc")]
fn grpc() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "../proto/authd/v1/auth.proto",
        "../proto/authd/v1/admin.proto",
    ];
    println!("cargo:rerun-if-changed=../proto");
    let fds = protox::compile(protos, ["../proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(fds.clone())?;

    let server_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("server");
    std::fs::create_dir_all(&server_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        // Unimplemented RPCs answer UNIMPLEMENTED, so a stand-in implements only what it needs.
        .generate_default_stubs(true)
        // The messages are the client's: one set of types on both sides of a test.
        .extern_path(".authd.v1", "crate::proto")
        .out_dir(server_dir)
        .compile_fds(fds)?;
    Ok(())
}
