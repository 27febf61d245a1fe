//! TLS for the gRPC port: a server configuration whose certificate can be swapped while
//! serving, and `authd tls self-signed` to try it without a PKI.
mod self_signed;
mod serving;

pub use self_signed::{SelfSigned, existing_set, self_signed};
pub use serving::{ServerTls, TlsFileError};
