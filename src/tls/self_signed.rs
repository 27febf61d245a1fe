//! `authd tls self-signed`: a throw-away CA with a server and a client certificate, to try
//! TLS and mutual TLS without an existing PKI.
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The PEM texts of a CA certificate and of a server and a client certificate it signed.
pub struct SelfSigned {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

/// A new CA, a server certificate for `names` (DNS names or IP addresses) and a client
/// certificate (CN `authd-client`), all with fresh ECDSA P-256 keys.
pub fn self_signed(names: &[String]) -> anyhow::Result<SelfSigned> {
    if names.is_empty() {
        anyhow::bail!("give at least one --name for the server certificate");
    }
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = name("authd self-signed CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca = Issuer::new(ca_params, ca_key);

    // `new` reads an IP address as an IP SAN, anything else as a DNS name.
    let mut server = CertificateParams::new(names.to_vec())
        .context("invalid --name for the server certificate")?;
    server.distinguished_name = name(&names[0]);
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &ca)?;

    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client.distinguished_name = name("authd-client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate()?;
    let client_cert = client.signed_by(&client_key, &ca)?;

    Ok(SelfSigned {
        ca: ca_cert.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    })
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// The files `SelfSigned::write` creates.
pub const FILES: [&str; 5] = [
    "ca.pem",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
];

/// Whether `dir` already holds a complete set (`Ok(true)`), none of it (`Ok(false)`), or a
/// part, which is an error: completing it would pair keys from two different CAs.
pub fn existing_set(dir: &Path) -> anyhow::Result<bool> {
    let present: Vec<&str> = FILES.into_iter().filter(|f| dir.join(f).exists()).collect();
    match present.len() {
        0 => Ok(false),
        n if n == FILES.len() => Ok(true),
        _ => anyhow::bail!(
            "{} holds only part of a set ({}): remove those files or use another --out",
            dir.display(),
            present.join(", ")
        ),
    }
}

impl SelfSigned {
    /// Write `ca.pem`, `server.pem`, `server.key`, `client.pem` and `client.key` into `dir`
    /// (created if missing); the keys readable by their owner only.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (file, text, secret) in [
            ("ca.pem", &self.ca, false),
            ("server.pem", &self.server_cert, false),
            ("server.key", &self.server_key, true),
            ("client.pem", &self.client_cert, false),
            ("client.key", &self.client_key, true),
        ] {
            let path = dir.join(file);
            write_file(&path, text, secret)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

fn write_file(path: &Path, text: &str, secret: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    let mode = if secret { 0o600 } else { 0o644 };
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = options.open(path)?;
    // The mode applies only to a new file: tighten one that was already there.
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_five_files_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        self_signed(&names).unwrap().write(dir.path()).unwrap();
        for f in ["ca.pem", "server.pem", "client.pem"] {
            let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{f}");
        }
        #[cfg(unix)]
        for f in ["server.key", "client.key"] {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join(f)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
        }
    }
}
