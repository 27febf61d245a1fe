//! `--h2load-fixture`: what benches/h2load.sh needs from an authd it started, as files: the
//! framed `ValidateRequest` h2load sends (native gRPC and gRPC-Web frame a message alike),
//! and authd's reply to it, which the floor (`--serve-floor-standalone`) answers.
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context as _, Result};
use prost::Message as _;

use crate::authd::Target;
use crate::floor::hex;
use crate::scenarios::{Fixture, validate_request};

/// Register the accounts, log one in, validate its token once, and write into `dir`:
/// `validate.grpc` (the request body), `reply.hex` (the reply, for the floor) and `token`.
pub async fn write_fixture(addr: SocketAddr, dir: &Path) -> Result<()> {
    let fixture = Fixture::prepare(&Target { addr, ca_pem: None }).await?;
    let request = validate_request(fixture.token()).encode_to_vec();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write("validate.grpc", &grpc_frame(&request)?)?;
    write("reply.hex", hex(&fixture.reply.encode_to_vec()).as_bytes())?;
    write("token", fixture.token().as_bytes())
}

/// A length-prefixed message: one byte "not compressed", four bytes of big-endian length,
/// the message.
fn grpc_frame(message: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(message.len()).context("message too long for one frame")?;
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_flag_length_message() {
        let request = validate_request("a.b.c").encode_to_vec();
        // ValidateRequest { token = 1 }: tag 0x0a, length 5, the token; no empty audience.
        assert_eq!(request, b"\x0a\x05a.b.c");
        assert_eq!(
            grpc_frame(&request).unwrap(),
            b"\x00\x00\x00\x00\x07\x0a\x05a.b.c"
        );
    }
}
