//! TLS over TCP with rustls (the `ring` provider; TLS 1.2 and 1.3).
//!
//! Secure by default: the server's certificate chain is verified against
//! the system trust store (or the CA file that replaces it) and must name
//! the host we connect to (or the server name override). Only the option
//! whose name says "insecure" turns verification off.
//!
//! Certificates and keys are read and checked when the option is set, so
//! a bad file is reported at that call, not at connect time. The private
//! key is parsed then, once, and only rustls's signing key is kept (see
//! `key`).

mod key;
mod signer;

use super::nosigpipe::NoSigPipe;
use super::signer::{ExternalSigner, KeyType};
use super::tcp::TcpSocket as TcpStream;
use super::ConnectError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{
    self, AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use tokio_rustls::TlsConnector;

/// TLS settings of a client. Cheap to clone: parsed certificates are shared.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Trust anchors from a CA file; `None` uses the system trust store.
    ca: Option<(String, Arc<RootCertStore>)>,
    identity: Option<Arc<ClientIdentity>>,
    /// Name for SNI and certificate verification instead of the URL's host.
    server_name: Option<ServerName<'static>>,
    alpn: Vec<Vec<u8>>,
    insecure_skip_verify: bool,
}

struct ClientIdentity {
    cert_path: String,
    /// The key type and callback of a key kept outside (`set_client_signer`).
    external: Option<(KeyType, Arc<dyn ExternalSigner>)>,
    /// The chain and rustls's signing key, shared with the TLS
    /// configuration of every connection (no copy per connect).
    certified: Arc<CertifiedKey>,
}

impl fmt::Debug for TlsOptions {
    // The key stays out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_file", &self.ca.as_ref().map(|c| &c.0))
            .field("client_cert", &self.identity.as_ref().map(|i| &i.cert_path))
            .field("server_name", &self.server_name)
            .field("alpn", &self.alpn)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(ring::default_provider())).clone()
}

/// Fills `buf` from the system's secure random source (ring's, which
/// rustls uses too).
pub(super) fn secure_random(buf: &mut [u8]) -> io::Result<()> {
    provider()
        .secure_random
        .fill(buf)
        .map_err(|_| io::Error::other("the system's random number source failed"))
}

/// The system trust store, loaded once per process.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (_added, _ignored) = store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "none found".to_string(), |e| e.to_string());
                return Err(format!(
                    "no system CA certificates could be loaded ({why}); \
                     set a CA file with mqtt_options_set_tls_ca_file"
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
}

impl TlsOptions {
    /// Loads a PEM bundle (one or more certificates) that replaces the
    /// system trust store. `None` goes back to the system store.
    pub fn set_ca_file(&mut self, path: Option<&str>) -> Result<(), String> {
        let Some(path) = path else {
            self.ca = None;
            return Ok(());
        };
        let certs = read_certs(path, "CA file")?;
        self.ca = Some((
            path.to_string(),
            ca_store(certs, &format!("CA file '{path}'"))?,
        ));
        Ok(())
    }

    /// Like `set_ca_file`, from a PEM buffer.
    pub fn set_ca_pem(&mut self, pem: Option<&[u8]>) -> Result<(), String> {
        let Some(pem) = pem else {
            self.ca = None;
            return Ok(());
        };
        let certs = pem_certs(pem, "the CA PEM buffer")?;
        self.ca = Some((
            "<PEM buffer>".to_string(),
            ca_store(certs, "the CA PEM buffer")?,
        ));
        Ok(())
    }

    /// Loads the client certificate chain and its private key (PEM; RSA,
    /// ECDSA or Ed25519; PKCS#1, SEC1 or PKCS#8) and checks that they
    /// belong together. `None` removes the client certificate.
    pub fn set_client_cert(&mut self, paths: Option<(&str, &str)>) -> Result<(), String> {
        let Some((cert_path, key_path)) = paths else {
            self.identity = None;
            return Ok(());
        };
        let certs = read_certs(cert_path, "client certificate file")?;
        let certified = matched(certs, key::load(key_path)?).map_err(|e| {
            format!("client certificate '{cert_path}' and key '{key_path}' cannot be used together: {e}")
        })?;
        self.set_identity(cert_path.to_string(), certified);
        Ok(())
    }

    /// Like `set_client_cert`, from PEM buffers (certificate chain, key).
    /// The key's bytes are decoded into a buffer wiped once it is parsed.
    pub fn set_client_cert_pem(&mut self, pems: Option<(&[u8], &[u8])>) -> Result<(), String> {
        let Some((cert_pem, key_pem)) = pems else {
            self.identity = None;
            return Ok(());
        };
        let certs = pem_certs(cert_pem, "the client certificate PEM buffer")?;
        let key = key::from_pem(key_pem).map_err(|e| format!("the key PEM buffer: {e}"))?;
        let certified = matched(certs, key).map_err(|e| {
            format!("the client certificate and key PEM buffers cannot be used together: {e}")
        })?;
        self.set_identity("<PEM buffer>".to_string(), certified);
        Ok(())
    }

    /// Sets a client certificate chain (PEM) whose private key stays
    /// outside: `signer` signs during the handshake (see `signer`). The
    /// chain's first certificate must carry a key of `key_type`.
    pub fn set_client_signer(
        &mut self,
        chain_pem: &[u8],
        key_type: KeyType,
        external: Arc<dyn ExternalSigner>,
    ) -> Result<(), String> {
        let certs = pem_certs(chain_pem, "the client certificate chain PEM buffer")?;
        // The certificate's own key, not any bytes of it: the signature
        // algorithm of an Ed25519 CA is the Ed25519 key's OID too.
        let Some(algorithm) = spki_algorithm(&certs[0]) else {
            return Err(
                "the client certificate chain's first certificate cannot be parsed \
                 (no subjectPublicKeyInfo found)"
                    .into(),
            );
        };
        if !algorithm.starts_with(key_type.spki_algorithm()) {
            return Err(format!(
                "the client certificate's public key is not an {} key (the key type given)",
                key_type.name()
            ));
        }
        let key = signer::CallbackKey {
            key_type,
            signer: external.clone(),
        };
        self.identity = Some(Arc::new(ClientIdentity {
            cert_path: format!("<PEM buffer, {} key signed by callback>", key_type.name()),
            external: Some((key_type, external)),
            certified: Arc::new(CertifiedKey::new(certs, Arc::new(key))),
        }));
        Ok(())
    }

    /// With a client signer set: a copy whose signer is `wrap(signer)`
    /// (the client wraps it per connection); `None` without one.
    pub fn with_signer_wrapped(
        &self,
        wrap: impl FnOnce(Arc<dyn ExternalSigner>) -> Arc<dyn ExternalSigner>,
    ) -> Option<TlsOptions> {
        let id = self.identity.as_ref()?;
        let (key_type, external) = id.external.clone()?;
        let key = signer::CallbackKey {
            key_type,
            signer: wrap(external.clone()),
        };
        let mut copy = self.clone();
        copy.identity = Some(Arc::new(ClientIdentity {
            cert_path: id.cert_path.clone(),
            external: Some((key_type, external)),
            certified: Arc::new(CertifiedKey::new(id.certified.cert.clone(), Arc::new(key))),
        }));
        Some(copy)
    }

    fn set_identity(&mut self, cert_path: String, certified: CertifiedKey) {
        self.identity = Some(Arc::new(ClientIdentity {
            cert_path,
            external: None,
            certified: Arc::new(certified),
        }));
    }

    /// Sets the name used for SNI and verification (`None`: the URL's host).
    pub fn set_server_name(&mut self, name: Option<&str>) -> Result<(), String> {
        self.server_name = match name {
            None => None,
            Some(n) => Some(
                ServerName::try_from(n.to_string())
                    .map_err(|_| format!("'{n}' is not a valid TLS server name"))?,
            ),
        };
        Ok(())
    }

    /// Sets the ALPN protocols offered, in order of preference.
    pub fn set_alpn(&mut self, protocols: Vec<Vec<u8>>) -> Result<(), String> {
        if let Some(p) = protocols.iter().find(|p| p.is_empty() || p.len() > 255) {
            return Err(format!(
                "an ALPN protocol name must be 1 to 255 bytes long (got {} bytes)",
                p.len()
            ));
        }
        self.alpn = protocols;
        Ok(())
    }

    /// Turns certificate and host name verification off (test rigs only).
    /// Prints a warning to stderr, once per process.
    pub fn set_insecure_skip_verify(&mut self, skip: bool) -> Result<(), String> {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if skip && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            eprintln!(
                "mqtt5c WARNING: TLS certificate verification is disabled \
                 (mqtt_options_set_tls_insecure_skip_verify); any server can \
                 impersonate the broker. Use this on test rigs only."
            );
        }
        self.insecure_skip_verify = skip;
        Ok(())
    }

    /// Whether certificate verification is off (`set_insecure_skip_verify`).
    pub fn skips_verification(&self) -> bool {
        self.insecure_skip_verify
    }

    fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS configuration: {e}"))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SkipVerify(provider())))
        } else {
            let roots = match &self.ca {
                Some((_, store)) => store.clone(),
                None => system_roots()?,
            };
            builder.with_root_certificates(roots)
        };
        let mut config = match &self.identity {
            Some(id) => builder
                .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(id.certified.clone()))),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }
}

/// The chain with its key, once checked that they belong together.
fn matched(
    certs: Vec<CertificateDer<'static>>,
    key: Arc<dyn rustls::sign::SigningKey>,
) -> Result<CertifiedKey, rustls::Error> {
    let certified = CertifiedKey::new(certs, key);
    match certified.keys_match() {
        // As rustls: a key that cannot tell its public half is let through.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(e) => Err(e),
    }
}

/// A trust store of every certificate in `certs` (`what` names their source).
fn ca_store(certs: Vec<CertificateDer<'static>>, what: &str) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        store.add(cert).map_err(|e| {
            format!(
                "{what}: certificate #{} is not a usable CA certificate: {e}",
                i + 1
            )
        })?;
    }
    Ok(Arc::new(store))
}

/// The certificates of a PEM buffer; at least one.
fn pem_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} contains no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

/// The content of the AlgorithmIdentifier in a certificate's
/// subjectPublicKeyInfo (RFC 5280 4.1: Certificate, tbsCertificate, an
/// optional [0] version, serialNumber, signature, issuer, validity,
/// subject, then subjectPublicKeyInfo { algorithm, subjectPublicKey }).
fn spki_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _) = der(cert)? else {
        return None;
    };
    let (0x30, mut rest, _) = der(cert)? else {
        return None;
    };
    if let (0xA0, _, after) = der(rest)? {
        rest = after;
    }
    for _ in 0..5 {
        rest = der(rest)?.2;
    }
    let (0x30, spki, _) = der(rest)? else {
        return None;
    };
    match der(spki)? {
        (0x30, algorithm, _) => Some(algorithm),
        _ => None,
    }
}

/// One DER element at the start of `b`: its tag, its content and what
/// follows it.
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, b) = b.split_first()?;
    let (len, b) = if first < 0x80 {
        (usize::from(first), b)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let len = b
            .get(..n)?
            .iter()
            .fold(0usize, |len, &x| (len << 8) | usize::from(x));
        (len, &b[n..])
    };
    (len <= b.len()).then(|| (tag, &b[..len], &b[len..]))
}

fn read_certs(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read {what} '{path}': {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} '{path}' contains no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

/// Runs the TLS handshake on a connected TCP stream.
pub(super) async fn handshake(
    stream: NoSigPipe<TcpStream>,
    host: &str,
    opts: &TlsOptions,
) -> Result<TlsStream<NoSigPipe<TcpStream>>, ConnectError> {
    let config = opts.client_config().map_err(ConnectError::Tls)?;
    let name = match &opts.server_name {
        Some(n) => n.clone(),
        None => ServerName::try_from(host.to_string())
            .map_err(|_| ConnectError::Tls(format!("'{host}' is not a valid TLS server name")))?,
    };
    TlsConnector::from(config)
        .connect(name.clone(), stream)
        .await
        .map_err(|e| {
            ConnectError::Tls(format!(
                "TLS handshake with '{}' failed: {}",
                name.to_str(),
                describe_io(&e).unwrap_or_else(|| match e.kind() {
                    io::ErrorKind::UnexpectedEof => {
                        "the server closed the connection during the handshake".to_string()
                    }
                    _ => crate::redact::peer(&e.to_string()),
                })
            ))
        })
}

/// If `e` carries a TLS error (rustls puts them inside io::Error), says
/// what went wrong in words. Escaped: rustls's text may quote the server
/// (the names in its certificate).
pub fn describe_io(e: &io::Error) -> Option<String> {
    let err = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(crate::redact::peer(&describe(err)))
}

fn describe(err: &rustls::Error) -> String {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(c) => {
            let what = match c {
                CertificateError::UnknownIssuer => {
                    "unknown issuer: the server's certificate is not signed by a trusted CA"
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "the server's certificate has expired"
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "the server's certificate is not valid yet"
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "name mismatch: the server's certificate is for another host name"
                }
                CertificateError::Revoked => "the server's certificate is revoked",
                CertificateError::BadSignature => "the server's certificate has a bad signature",
                _ => "the server's certificate was rejected",
            };
            format!("{what} ({err})")
        }
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            "client certificate required: the server asks for a client certificate \
             (set one with mqtt_options_set_tls_client_cert) (TLS alert certificate_required)"
                .to_string()
        }
        E::AlertReceived(AlertDescription::DecryptError) => format!(
            "the server could not verify a signature of ours: the client key, or the signature \
             of the client signer callback, does not match the client certificate ({err})"
        ),
        E::AlertReceived(a) => {
            format!("the server ended the handshake with TLS alert {a:?} ({err})")
        }
        E::NoApplicationProtocol => {
            format!("the server accepts none of our ALPN protocols ({err})")
        }
        _ => err.to_string(),
    }
}

/// Accepts any certificate; signatures are still checked so the session
/// keys are the server's. Used only with the insecure option.
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.extend_from_slice(&[0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        v.extend_from_slice(content);
        v
    }

    /// The subjectPublicKeyInfo's algorithm is found past the version,
    /// serial, signature algorithm, issuer, validity and subject; a
    /// truncated or mangled certificate gives None, never a panic.
    #[test]
    fn finds_the_spki_algorithm_and_survives_truncation() {
        let ed25519 = [0x06, 0x03, 0x2b, 0x65, 0x70];
        let p256 = KeyType::EcdsaP256.spki_algorithm();
        let spki = tlv(0x30, &[tlv(0x30, p256), tlv(0x03, &[0; 66])].concat());
        let tbs = [
            tlv(0xA0, &tlv(0x02, &[2])),
            tlv(0x02, &[1; 20]),
            tlv(0x30, &ed25519),
            tlv(0x30, &[0x31; 200]),
            tlv(0x30, &[]),
            tlv(0x30, &[]),
            spki,
        ]
        .concat();
        let cert = tlv(
            0x30,
            &[tlv(0x30, &tbs), tlv(0x30, &ed25519), tlv(0x03, &[0; 65])].concat(),
        );
        assert_eq!(spki_algorithm(&cert), Some(p256));
        for cut in 0..cert.len() {
            let _ = spki_algorithm(&cert[..cut]);
        }
        let mut mangled = cert.clone();
        mangled[1] = 0x85; // a 5-byte length
        assert_eq!(spki_algorithm(&mangled), None);
        assert_eq!(der(&[0x30, 0x82, 0xff, 0xff, 0]), None);
    }
}
