//! A client key held outside the library (a TPM, a PKCS#11 token, a
//! secure element): the application signs during the TLS handshake.
//! This part has no TLS in it, so that a build without TLS has the same
//! types (its setter refuses); `tls::signer` plugs it into rustls.

/// The kind of key that signs, which fixes the TLS signature schemes
/// offered for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    EcdsaP256,
    EcdsaP384,
    Rsa,
    Ed25519,
}

impl KeyType {
    /// The TLS SignatureScheme codes this key can sign with, most
    /// preferred first (RSA: PSS, which TLS 1.3 requires, then PKCS#1
    /// v1.5 for TLS 1.2 servers).
    pub fn schemes(self) -> &'static [u16] {
        match self {
            KeyType::EcdsaP256 => &[0x0403],
            KeyType::EcdsaP384 => &[0x0503],
            KeyType::Rsa => &[0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601],
            KeyType::Ed25519 => &[0x0807],
        }
    }

    /// The DER of the public key's algorithm identifier (OIDs) that a
    /// certificate for such a key carries in its SubjectPublicKeyInfo.
    pub fn spki_algorithm(self) -> &'static [u8] {
        match self {
            // id-ecPublicKey, prime256v1
            KeyType::EcdsaP256 => {
                b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07"
            }
            // id-ecPublicKey, secp384r1
            KeyType::EcdsaP384 => {
                b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x05\x2b\x81\x04\x00\x22"
            }
            // rsaEncryption
            KeyType::Rsa => b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01",
            // id-Ed25519
            KeyType::Ed25519 => b"\x06\x03\x2b\x65\x70",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ECDSA P-256",
            KeyType::EcdsaP384 => "ECDSA P-384",
            KeyType::Rsa => "RSA",
            KeyType::Ed25519 => "Ed25519",
        }
    }
}

/// Signs `message` (the whole data to sign, not a hash) with the TLS
/// signature scheme `scheme`. Called during handshakes, from any of the
/// library's threads, possibly for several connections at once; may block.
/// A client's signer that panics fails that signature (the handshake then
/// fails, and a reconnection tries again).
pub trait ExternalSigner: Send + Sync {
    /// The signature, or why there is none.
    fn sign(&self, scheme: u16, message: &[u8]) -> Result<Vec<u8>, String>;
}
