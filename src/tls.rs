//! TLS to managed services: `wss://` SurrealDB and `rediss://` Redis trust the system's CA
//! certificates plus, for a private cluster, those of a PEM file (`SURREAL_CA_FILE`, `REDIS_CA_FILE`).
//!
//! Both SDKs use rustls. The dependency tree compiles two of its crypto providers (ring for
//! SurrealDB's object store client, aws-lc-rs for the SDK itself), and rustls then wants the process
//! to pick one: `install_crypto_provider` does, before the first handshake.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The CA certificates of a PEM file, read and checked when the configuration is.
#[derive(Clone)]
pub struct CaFile {
    path: PathBuf,
    certs: Arc<Vec<CertificateDer<'static>>>,
}

impl CaFile {
    /// Reads every certificate of the PEM file at `path`; a file that holds none is an error.
    pub fn read(path: &Path) -> Result<Self, String> {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        // A certificate that rustls cannot use as a trust anchor is refused now, not at connect time.
        let mut probe = RootCertStore::empty();
        for cert in &certs {
            probe.add(cert.clone()).map_err(|e| {
                format!(
                    "{} holds a certificate that is not a usable CA: {e}",
                    path.display()
                )
            })?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            certs: Arc::new(certs),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CaFile({}, {} certificate(s))",
            self.path.display(),
            self.certs.len()
        )
    }
}

/// Makes ring the process's rustls crypto provider (once; later calls do nothing).
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The anchors a connection trusts: the system's, then the extra file's.
fn trust_anchors(extra: Option<&CaFile>) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let found = rustls_native_certs::load_native_certs();
    let mut anchors = found.certs;
    if let Some(error) = found.errors.first() {
        // A partly unreadable system store still leaves the rest, and an extra file may be all a
        // private cluster needs.
        tracing::warn!(%error, "reading the system's CA certificates");
    }
    if let Some(extra) = extra {
        anchors.extend(extra.certs.iter().cloned());
    }
    if anchors.is_empty() {
        anyhow::bail!(
            "no CA certificates to verify the server with: the system has none (install \
             ca-certificates) and no CA file is configured"
        );
    }
    Ok(anchors)
}

/// A rustls client configuration for `wss://` SurrealDB.
pub fn client_config(extra: Option<&CaFile>) -> anyhow::Result<rustls::ClientConfig> {
    install_crypto_provider();
    let mut roots = RootCertStore::empty();
    // A system certificate rustls cannot parse is skipped, as every rustls client does; the extra
    // file's were checked when it was read.
    let (_added, _skipped) = roots.add_parsable_certificates(trust_anchors(extra)?);
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The same anchors as one PEM bundle, the form the redis crate takes its roots in (they replace its
/// own system roots, so both are in it).
pub fn anchors_pem(extra: Option<&CaFile>) -> anyhow::Result<Vec<u8>> {
    let pems: Vec<pem::Pem> = trust_anchors(extra)?
        .iter()
        .map(|der| pem::Pem::new("CERTIFICATE", der.to_vec()))
        .collect();
    Ok(pem::encode_many(&pems).into_bytes())
}
