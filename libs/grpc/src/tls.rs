//! mTLS with SPIFFE certificates (production mode): a process's identity
//! (`spiffe://paved/<env>/<workload>`, a short-lived X.509 certificate from
//! the broker's CA) and the trust bundle it verifies peers with, both
//! replaceable while connections are served, so that renewals and CA
//! rotations need no restart.
//!
//! Peers are verified as SPIFFE prescribes: a chain to a CA of the bundle,
//! and the one URI SAN as the identity (no DNS names). A server asks every
//! client for a certificate but lets clients without one through (people
//! with tokens); the auth layer requires one where the token is a
//! platform service's ([`peer_id`]).

use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, TrustAnchor, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
    sign::CertifiedKey,
};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use crate::spiffe::{PLATFORM_ENVIRONMENT, PLATFORM_PREFIX, PLATFORM_SERVICES, TRUST_DOMAIN, platform_id, workload_id, workload_of};

/// How often a process fetches the bundle again (a new CA is published
/// before it signs for longer than this).
pub const BUNDLE_REFRESH: Duration = Duration::from_secs(2);
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait to be accepted.
const HANDSHAKES: usize = 256;

/// `der` as PEM with the label (`CERTIFICATE`, `PRIVATE KEY`).
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The certificates of a PEM text, in order.
pub fn certificates(pem_text: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem_text.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in the PEM text");
    Ok(certs)
}

/// The PKCS#8 private key (DER) of PEM text, as [`pem`] writes it.
pub fn private_key(pem_text: &str) -> anyhow::Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    Ok(PrivatePkcs8KeyDer::from_pem_slice(pem_text.as_bytes())
        .map_err(|e| anyhow::anyhow!("no PKCS#8 private key: {e}"))?
        .secret_pkcs8_der()
        .to_vec())
}

/// An identity kept on disk: `dir/key.pem`, `dir/cert.pem`, `dir/bundle.pem`
/// (each mode 0600). All three are written aside before any is renamed into
/// place, the bundle first: a crash among the renames leaves either the old
/// key and certificate (beside a bundle that also trusts the new CA) or a
/// key that is not the certificate's, with the rest aside, whole, which
/// [`load_identity`] renames into place.
pub fn save_identity(dir: &std::path::Path, key_der: &[u8], certificate_pem: &str, bundle_pem: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in identity_files(key_der, certificate_pem, bundle_pem) {
        write_aside(&dir.join(name), &text)?;
    }
    for name in RENAMED {
        std::fs::rename(aside(&dir.join(name))?, dir.join(name))?;
    }
    // The renames themselves survive a power cut.
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

const KEY: &str = "key.pem";
const CERT: &str = "cert.pem";
const BUNDLE: &str = "bundle.pem";
/// The order [`save_identity`] renames its files into place in.
const RENAMED: [&str; 3] = [BUNDLE, KEY, CERT];

/// Each file of an identity, by name, with its text.
fn identity_files(key_der: &[u8], certificate_pem: &str, bundle_pem: &str) -> [(&'static str, String); 3] {
    [(BUNDLE, bundle_pem.to_string()), (KEY, pem("PRIVATE KEY", key_der)), (CERT, certificate_pem.to_string())]
}

/// Writes `file` (mode 0600) aside and renames it into place, replacing
/// what was there: a reader sees the old text or the new, never half.
pub fn replace_private(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    write_aside(file, text)?;
    std::fs::rename(aside(file)?, file)
}

/// Where `file`'s next text is written before it is renamed into place.
fn aside(file: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let name = file.file_name().ok_or_else(|| std::io::Error::other(format!("{}: not a file name", file.display())))?;
    Ok(file.with_file_name(format!(".{}.new", name.to_string_lossy())))
}

/// Writes `text` to [`aside`]`(file)`, mode 0600, synced.
fn write_aside(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let aside = aside(file)?;
    // Never readable by others, not even while written.
    let _ = std::fs::remove_file(&aside);
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&aside)?;
    out.write_all(text.as_bytes())?;
    out.sync_all()
}

/// What [`save_identity`] wrote: the key (DER), the certificate and the
/// bundle (PEM), the key checked against the certificate. A save
/// interrupted among its renames is finished here; what one interrupted
/// before them left aside is removed, so it is never taken for the rest of
/// a later one.
pub fn load_identity(dir: &std::path::Path) -> anyhow::Result<(Vec<u8>, String, String)> {
    let in_place = read_identity(dir, false);
    if in_place.is_ok() {
        for name in RENAMED {
            if let Ok(aside) = aside(&dir.join(name)) {
                let _ = std::fs::remove_file(aside);
            }
        }
        return in_place;
    }
    let finished = read_identity(dir, true).and_then(|identity| {
        for name in RENAMED {
            let (file, aside) = (dir.join(name), aside(&dir.join(name))?);
            if aside.exists() {
                std::fs::rename(&aside, &file)?;
            }
        }
        tracing::info!(dir = %dir.display(), "finished saving an identity whose save was interrupted");
        Ok(identity)
    });
    // Nothing whole aside: the error is about the files in place.
    finished.or(in_place)
}

/// The identity in `dir`, each file taken from aside where `finish` asks
/// and one is there; an error unless its key is the certificate's.
fn read_identity(dir: &std::path::Path, finish: bool) -> anyhow::Result<(Vec<u8>, String, String)> {
    use anyhow::Context;
    let read = |name: &str| {
        let file = match aside(&dir.join(name)) {
            Ok(aside) if finish && aside.exists() => aside,
            _ => dir.join(name),
        };
        std::fs::read_to_string(&file).with_context(|| file.display().to_string())
    };
    let key = private_key(&read(KEY)?).with_context(|| format!("{}/{KEY}", dir.display()))?;
    let certificate_pem = read(CERT)?;
    let pair = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.clone()));
    CertifiedKey::from_der(certificates(&certificate_pem)?, pair, &rustls::crypto::ring::default_provider())
        .with_context(|| format!("{}: {KEY} is not the key of {CERT}", dir.display()))?;
    Ok((key, certificate_pem, read(BUNDLE)?))
}

/// When a certificate stops being valid, Unix milliseconds.
pub fn not_after_ms(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    Some(parsed.validity().not_after.timestamp() * 1000)
}

/// The SPIFFE id of a certificate: its one URI SAN under the trust domain.
pub fn spiffe_id(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let names = parsed.subject_alternative_name().ok()??;
    let uris: Vec<&str> = names
        .value
        .general_names
        .iter()
        .filter_map(|n| if let x509_parser::extensions::GeneralName::URI(u) = n { Some(*u) } else { None })
        .collect();
    match uris.as_slice() {
        [one] if one.strip_prefix(TRUST_DOMAIN).is_some_and(|path| path.starts_with('/')) => Some((*one).to_string()),
        _ => None,
    }
}

/// A new key pair and a CSR for `spiffe_id` signed by it (the CA ignores
/// the CSR's names; the id is only a courtesy to people reading it).
pub fn new_key(spiffe_id: &str) -> anyhow::Result<(Vec<u8>, String)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = vec![rcgen::SanType::URI(spiffe_id.try_into()?)];
    let csr = params.serialize_request(&key)?.pem()?;
    Ok((key.serialize_der(), csr))
}

/// What a process trusts: the CAs of the bundle.
#[derive(Default)]
struct Bundle {
    anchors: Vec<TrustAnchor<'static>>,
    pem: String,
}

struct Inner {
    spiffe_id: String,
    /// Where the bundle is shared with processes that have no certificate
    /// yet: the broker writes it, the others start from it.
    bundle_file: Option<std::path::PathBuf>,
    provider: Arc<CryptoProvider>,
    certified: RwLock<Option<(Arc<CertifiedKey>, i64)>>,
    bundle: RwLock<Arc<Bundle>>,
}

/// A process's TLS identity and trust bundle; clones share them.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("spiffe_id", &self.inner.spiffe_id).finish_non_exhaustive()
    }
}

/// A channel to `url` (`http://` or `https://`, the same here): over mTLS
/// to a server that is `expect` (any identity of the trust domain if None)
/// when `tls` is given (production mode), else plain (embedded mode,
/// loopback). `configure` sets timeouts.
pub fn connect(
    url: &str,
    tls: Option<&Tls>,
    expect: Option<&str>,
    configure: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> anyhow::Result<tonic::transport::Channel> {
    // The TLS is ours (the connector's), not tonic's: tonic refuses an
    // https URI it does not secure itself.
    let plain = url.strip_prefix("https://").map_or_else(|| url.to_string(), |rest| format!("http://{rest}"));
    let endpoint = configure(tonic::transport::Endpoint::from_shared(plain).map_err(|e| anyhow::anyhow!("{url:?}: {e}"))?);
    match tls {
        Some(tls) => tls.channel(endpoint, expect.map(str::to_string)),
        None if url.starts_with("https://") => anyhow::bail!("{url}: https needs mTLS (PAVED_MTLS=true)"),
        None => Ok(endpoint.connect_lazy()),
    }
}

/// A channel to another platform service by its name (`canary-analyzer`,
/// `provisioner`, …): [`connect`] expecting that service's identity, with
/// the connect timeout every service-to-service call uses (2 s) and the
/// caller's timeout per call.
pub fn connect_service(
    url: &str,
    tls: Option<&Tls>,
    service: &str,
    call_timeout: std::time::Duration,
) -> anyhow::Result<tonic::transport::Channel> {
    connect(url, tls, Some(&platform_id(service)), |e| {
        e.connect_timeout(std::time::Duration::from_secs(2)).timeout(call_timeout).tcp_nodelay(true)
    })
}

impl Tls {
    pub fn new(spiffe_id: impl Into<String>, bundle_file: Option<std::path::PathBuf>) -> Self {
        let inner = Inner {
            spiffe_id: spiffe_id.into(),
            bundle_file,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            certified: RwLock::new(None),
            bundle: RwLock::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    pub fn spiffe_id(&self) -> &str {
        &self.inner.spiffe_id
    }

    /// Trusts exactly the CAs of `pem_text`; false if that was already so.
    pub fn set_bundle(&self, pem_text: &str) -> anyhow::Result<bool> {
        if self.inner.bundle.read().unwrap_or_else(|e| e.into_inner()).pem == pem_text {
            return Ok(false);
        }
        let mut anchors = Vec::new();
        for cert in certificates(pem_text)? {
            anchors.push(webpki::anchor_from_trusted_cert(&cert)?.to_owned());
        }
        *self.inner.bundle.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Bundle { anchors, pem: pem_text.to_string() });
        Ok(true)
    }

    pub fn bundle_file(&self) -> Option<&std::path::Path> {
        self.inner.bundle_file.as_deref()
    }

    /// The bundle as last set (PEM).
    pub fn bundle_pem(&self) -> String {
        self.inner.bundle.read().unwrap_or_else(|e| e.into_inner()).pem.clone()
    }

    /// Presents `certificate_pem` (with `key_der`, PKCS#8) from now on.
    /// `expire_ms` is when it stops being valid (see [`Tls::renew_at`]).
    pub fn set_certificate(&self, certificate_pem: &str, key_der: Vec<u8>, expire_ms: i64) -> anyhow::Result<()> {
        let chain = certificates(certificate_pem)?;
        anyhow::ensure!(
            spiffe_id(&chain[0]).as_deref() == Some(self.spiffe_id()),
            "the certificate is not for {}: {:?}",
            self.spiffe_id(),
            spiffe_id(&chain[0])
        );
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der));
        let certified = CertifiedKey::from_der(chain, key, &self.inner.provider)?;
        *self.inner.certified.write().unwrap_or_else(|e| e.into_inner()) = Some((Arc::new(certified), expire_ms));
        crate::expiry::certificate_held(self.spiffe_id(), expire_ms);
        Ok(())
    }

    /// When the certificate should be replaced: at two thirds of its life
    /// (now, if there is none).
    pub fn renew_at(&self, issued_ms: i64) -> i64 {
        match &*self.inner.certified.read().unwrap_or_else(|e| e.into_inner()) {
            Some((_, expire)) => issued_ms + (expire - issued_ms) * 2 / 3,
            None => issued_ms,
        }
    }

    pub fn has_certificate(&self) -> bool {
        self.inner.certified.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.inner.certified.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(k, _)| k.clone())
    }

    /// Verifies a peer's chain against the bundle for `usage`; its SPIFFE id.
    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: webpki::KeyUsage,
    ) -> Result<String, rustls::Error> {
        let bundle = self.inner.bundle.read().unwrap_or_else(|e| e.into_inner()).clone();
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|e| rustls::Error::General(format!("peer certificate: {e}")))?;
        cert.verify_for_usage(
            self.inner.provider.signature_verification_algorithms.all,
            &bundle.anchors,
            intermediates,
            now,
            usage,
            None,
            None,
        )
        .map_err(|e| rustls::Error::General(format!("peer certificate not trusted: {e}")))?;
        spiffe_id(end_entity).ok_or_else(|| rustls::Error::General("peer certificate has no SPIFFE id of this trust domain".into()))
    }

    /// The server side: presents the current certificate, asks clients for
    /// theirs and verifies any they present.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.inner.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(Verifier { tls: self.clone(), expect: None }))
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The client side: presents the current certificate and accepts a
    /// server whose SPIFFE id is `expect` (any of the trust domain if None).
    pub fn client_config(&self, expect: Option<String>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut config = rustls::ClientConfig::builder_with_provider(self.inner.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier { tls: self.clone(), expect }))
            .with_client_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A channel to `endpoint` over mTLS (its URI is `http://`: the TLS is
    /// the connector's; see [`connect`]).
    fn channel(&self, endpoint: tonic::transport::Endpoint, expect: Option<String>) -> anyhow::Result<tonic::transport::Channel> {
        let connector = tokio_rustls::TlsConnector::from(self.client_config(expect)?);
        let connect = tower::service_fn(move |uri: http::Uri| {
            let connector = connector.clone();
            async move {
                let host = uri.host().ok_or_else(|| std::io::Error::other("no host in the URI"))?.to_string();
                let port = uri.port_u16().unwrap_or(443);
                let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
                tcp.set_nodelay(true)?;
                // The server is checked by its SPIFFE id, not this name.
                let name = ServerName::try_from(host.clone()).unwrap_or_else(|_| ServerName::try_from("paved").expect("a DNS name"));
                let tls = connector.connect(name.to_owned(), tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        });
        Ok(endpoint.connect_with_connector_lazy(connect))
    }

    /// TLS connections accepted on `listener`, handshakes done off the
    /// accept loop (a slow or failing client holds up no one).
    pub fn incoming(
        &self,
        listener: tokio::net::TcpListener,
    ) -> anyhow::Result<
        impl tokio_stream::Stream<Item = Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, std::io::Error>> + use<>,
    > {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.server_config()?);
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
                let (tcp, peer) = tokio::select! {
                    _ = tx.closed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
    }
}

/// The SPIFFE id a request's client certificate proved, if any (mTLS
/// servers; the chain was verified in the handshake).
pub fn peer_id<B>(request: &http::Request<B>) -> Option<String> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let info = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>()?;
    spiffe_id(info.peer_certs()?.first()?)
}

/// Serves and presents the current certificate.
#[derive(Debug)]
struct Resolver(Tls);

impl rustls::server::ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }
}

impl rustls::client::ResolvesClientCert for Resolver {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }

    fn has_certs(&self) -> bool {
        self.0.has_certificate()
    }
}

/// Verifies peers against the bundle of the moment.
#[derive(Debug)]
struct Verifier {
    tls: Tls,
    /// The server's SPIFFE id a client expects (any in the trust domain if None).
    expect: Option<String>,
}

impl Verifier {
    fn algorithms(&self) -> &rustls::crypto::WebPkiSupportedAlgorithms {
        &self.tls.inner.provider.signature_verification_algorithms
    }
}

/// The handshake's signature checks, the same on both sides: the
/// provider's algorithms.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms().supported_schemes()
        }
    };
}

impl ClientCertVerifier for Verifier {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.tls.verify(end_entity, intermediates, now, webpki::KeyUsage::client_auth())?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signatures!();
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let id = self.tls.verify(end_entity, intermediates, now, webpki::KeyUsage::server_auth())?;
        // An expectation ending in `/` is a prefix: `spiffe://paved/platform/`.
        let matches = |expect: &String| if expect.ends_with('/') { id.starts_with(expect.as_str()) } else { id == *expect };
        match &self.expect {
            Some(expect) if !matches(expect) => Err(rustls::Error::General(format!("the server is {id}, not {expect}"))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    handshake_signatures!();
}

#[cfg(test)]
mod tests {

    use super::*;

    /// A key (DER) and a certificate (PEM) of its own.
    fn identity() -> anyhow::Result<(Vec<u8>, String)> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let certificate = rcgen::CertificateParams::new(vec!["paved.test".into()])?.self_signed(&key)?;
        Ok((key.serialize_der(), certificate.pem()))
    }

    fn no_files_aside(dir: &std::path::Path) -> bool {
        RENAMED.iter().all(|name| aside(&dir.join(name)).is_ok_and(|aside| !aside.exists()))
    }

    #[test]
    fn an_identity_whose_save_was_cut_short_is_whole_when_loaded() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let dir = dir.path();
        let ((key_a, cert_a), (key_b, cert_b)) = (identity()?, identity()?);
        save_identity(dir, &key_a, &cert_a, "bundle a")?;
        assert_eq!(load_identity(dir)?, (key_a.clone(), cert_a.clone(), "bundle a".to_string()));

        // Cut short while writing aside: what is in place is whole, and
        // what was left aside is removed.
        write_aside(&dir.join(BUNDLE), "bundle b")?;
        write_aside(&dir.join(KEY), &pem("PRIVATE KEY", &key_b))?;
        assert_eq!(load_identity(dir)?, (key_a.clone(), cert_a.clone(), "bundle a".to_string()));
        assert!(no_files_aside(dir));

        // Cut short after each of save_identity's renames in turn: loading
        // gives the old key and certificate or the new, never the new
        // without the new bundle (the new CA may have signed them).
        let (old, new) = ((key_a.clone(), cert_a.clone()), (key_b.clone(), cert_b.clone()));
        for done in 1..RENAMED.len() {
            save_identity(dir, &key_a, &cert_a, "bundle a")?;
            for (name, text) in identity_files(&key_b, &cert_b, "bundle b") {
                write_aside(&dir.join(name), &text)?;
            }
            for name in &RENAMED[..done] {
                std::fs::rename(aside(&dir.join(name))?, dir.join(name))?;
            }
            let (key, cert, bundle) = load_identity(dir)?;
            let pair = (key, cert);
            assert!(pair == old || (pair == new && bundle == "bundle b"), "after {:?}: {bundle}", &RENAMED[..done]);
            assert!(no_files_aside(dir), "after {:?}", &RENAMED[..done]);
            assert_eq!(load_identity(dir)?, (pair.0, pair.1, bundle), "loads the same again");
        }
        // The new key beside the old certificate is finished, not refused.
        assert_eq!(std::fs::read_to_string(dir.join(CERT))?, cert_b);

        // A key that is not the certificate's, with nothing aside, is refused.
        replace_private(&dir.join(KEY), &pem("PRIVATE KEY", &key_a))?;
        let refused = format!("{:#}", load_identity(dir).expect_err("a key of another certificate"));
        assert!(refused.contains("key.pem is not the key of cert.pem"), "{refused}");
        Ok(())
    }

    #[test]
    fn saved_identity_files_are_private() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let (key, cert) = identity()?;
        save_identity(dir.path(), &key, &cert, "bundle")?;
        for name in RENAMED {
            let mode = std::fs::metadata(dir.path().join(name))?.permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        assert!(no_files_aside(dir.path()));
        Ok(())
    }
}
