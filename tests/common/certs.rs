//! Test certificates, made per test with rcgen (RSA keys with the openssl
//! command line, since ring cannot generate RSA keys): a CA, server and
//! client certificates, and bad variants (expired, another host name,
//! signed by another CA).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kind of key of a certificate.
#[derive(Clone, Copy, Debug)]
pub enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    /// RSA 2048 in PKCS#8 form.
    Rsa,
    /// RSA 2048 in PKCS#1 form ("BEGIN RSA PRIVATE KEY").
    RsaPkcs1,
}

/// A certificate and key written as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate as a PEM file.
    pub file: PathBuf,
    dir: PathBuf,
}

fn key_pair(kind: KeyKind, dir: &Path, name: &str) -> (KeyPair, String) {
    match kind {
        KeyKind::EcdsaP256 => {
            let k = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let pem = k.serialize_pem();
            (k, pem)
        }
        KeyKind::EcdsaP384 => {
            let k = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
            let pem = k.serialize_pem();
            (k, pem)
        }
        KeyKind::Ed25519 => {
            let k = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
            let pem = k.serialize_pem();
            (k, pem)
        }
        KeyKind::Rsa | KeyKind::RsaPkcs1 => {
            let p8 = dir.join(format!("{name}.rsa.p8.pem"));
            run(Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                ])
                .arg(&p8));
            let p8_pem = fs::read_to_string(&p8).unwrap();
            let k = KeyPair::from_pem_and_sign_algo(&p8_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
            if let KeyKind::RsaPkcs1 = kind {
                let p1 = dir.join(format!("{name}.rsa.p1.pem"));
                run(Command::new("openssl")
                    .args(["rsa", "-traditional", "-in"])
                    .arg(&p8)
                    .arg("-out")
                    .arg(&p1));
                let p1_pem = fs::read_to_string(&p1).unwrap();
                assert!(p1_pem.contains("BEGIN RSA PRIVATE KEY"), "{p1_pem}");
                (k, p1_pem)
            } else {
                (k, p8_pem)
            }
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How long a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    Current,
    Expired,
}

impl Ca {
    /// A new self-signed CA (ECDSA P-256) whose certificate is written to
    /// `dir/NAME.ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("mqtt5c test CA {name}"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, key).unwrap();
        let file = dir.join(format!("{name}.ca.pem"));
        fs::write(&file, issuer.pem()).unwrap();
        Ca {
            issuer,
            file,
            dir: dir.to_path_buf(),
        }
    }

    /// A server certificate for the given names (DNS names or IP
    /// addresses), written to `dir/NAME.pem` and `dir/NAME.key`.
    pub fn server(&self, name: &str, sans: &[&str], validity: Validity) -> CertFiles {
        self.issue(name, sans, validity, KeyKind::EcdsaP256, false)
    }

    /// A client certificate with the given key kind.
    pub fn client(&self, name: &str, kind: KeyKind) -> CertFiles {
        self.issue(name, &[], Validity::Current, kind, true)
    }

    fn issue(
        &self,
        name: &str,
        sans: &[&str],
        validity: Validity,
        kind: KeyKind,
        client: bool,
    ) -> CertFiles {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        } else {
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        }
        let (key, key_pem) = key_pair(kind, &self.dir, name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let files = CertFiles {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        };
        fs::write(&files.cert, cert.pem()).unwrap();
        fs::write(&files.key, key_pem).unwrap();
        files
    }
}

/// mosquitto configuration for a TLS listener on 127.0.0.1:`port`.
pub fn tls_listener_conf(port: u16, ca: &Path, server: &CertFiles, require_cert: bool) -> String {
    format!(
        "listener {port} 127.0.0.1\n\
         cafile {}\n\
         certfile {}\n\
         keyfile {}\n\
         require_certificate {require_cert}\n",
        ca.display(),
        server.cert.display(),
        server.key.display(),
    )
}
