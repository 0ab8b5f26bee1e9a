//! The client's private key: read from its PEM file into buffers that are
//! wiped when dropped, parsed once into the signing key rustls uses, and
//! not kept in any other form.
//!
//! What stays in memory afterwards is rustls's signing key (ring's key
//! object: an ECDSA scalar in Montgomery form, RSA CRT values as ring's
//! limbs, an Ed25519 expanded key), shared by the options, the clients
//! made from them and the TLS configuration of each connection, and freed
//! with the last of those; ring does not zero it when freed. The PEM text,
//! the DER bytes, and the PKCS#8 wrapping a SEC1 key gets are ours, and
//! are wiped as soon as the key is parsed.

use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
use std::io::Read;
use std::sync::Arc;
use tokio_rustls::rustls::crypto::ring::sign::{any_ecdsa_type, any_supported_type};
use tokio_rustls::rustls::sign::SigningKey;
use zeroize::{Zeroize, Zeroizing};

/// A key file is a few KiB; anything much larger is not one.
const MAX_KEY_FILE: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Pkcs8,
    Pkcs1,
    Sec1,
}

/// Reads the first private key of the PEM file at `path` and parses it.
pub(super) fn load(path: &str) -> Result<Arc<dyn SigningKey>, String> {
    let pem = read_file(path).map_err(|e| format!("cannot read key file '{path}': {e}"))?;
    from_pem(&pem).map_err(|e| format!("key file '{path}': {e}"))
}

/// Parses the first private key of a PEM buffer (the caller's: not
/// copied, only decoded into a buffer wiped once the key is parsed).
pub(super) fn from_pem(pem: &[u8]) -> Result<Arc<dyn SigningKey>, String> {
    let (form, der) = decode_pem(pem)?;
    let key = parse(form, &der);
    drop(der);
    key
}

/// The whole file, in a buffer sized once (so no partial copy is left
/// behind by a reallocation) and wiped when dropped.
fn read_file(path: &str) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_KEY_FILE {
        return Err(std::io::Error::other(format!(
            "{len} bytes is too large for a key file"
        )));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(len as usize + 1));
    file.take(MAX_KEY_FILE).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Finds the first private key section and decodes its base64 into a
/// buffer that is wiped when dropped.
fn decode_pem(pem: &[u8]) -> Result<(Form, Zeroizing<Vec<u8>>), String> {
    let mut rest = pem;
    while let Some(at) = find(rest, b"-----BEGIN ") {
        rest = &rest[at + 11..];
        let Some(end) = find(rest, b"-----") else {
            break;
        };
        let label = &rest[..end];
        rest = &rest[end + 5..];
        let form = match label {
            b"PRIVATE KEY" => Form::Pkcs8,
            b"RSA PRIVATE KEY" => Form::Pkcs1,
            b"EC PRIVATE KEY" => Form::Sec1,
            b"ENCRYPTED PRIVATE KEY" => {
                return Err("the private key is encrypted, which is not supported".into())
            }
            // Certificates, EC parameters: not the key.
            _ => continue,
        };
        let mut end_marker = b"-----END ".to_vec();
        end_marker.extend_from_slice(label);
        let Some(body_len) = find(rest, &end_marker) else {
            return Err("a private key section has no END line".into());
        };
        let body = &rest[..body_len];
        if body.contains(&b':') {
            return Err(
                "the private key has PEM headers (an encrypted legacy key?), not supported".into(),
            );
        }
        return base64(body).map(|der| (form, der));
    }
    Err(
        "no private key found in it (expected PEM: BEGIN PRIVATE KEY, RSA PRIVATE KEY or \
         EC PRIVATE KEY)"
            .into(),
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes standard base64, skipping white space, into a buffer sized once.
fn base64(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padded = false;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padded = true;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return Err("the private key is not valid base64".into()),
        };
        if padded {
            return Err("the private key is not valid base64 (data after '=')".into());
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    acc.zeroize();
    Ok(out)
}

/// Parses the DER key; ring reads it in place. SEC1 keys are wrapped in
/// PKCS#8 here, in a wiped buffer (rustls would make unwiped copies).
fn parse(form: Form, der: &[u8]) -> Result<Arc<dyn SigningKey>, String> {
    let unsupported = |e| format!("unsupported or invalid private key ({e})");
    match form {
        Form::Pkcs8 => any_supported_type(&PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)))
            .map_err(unsupported),
        Form::Pkcs1 => any_supported_type(&PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)))
            .map_err(unsupported),
        Form::Sec1 => {
            let mut last = None;
            for prefix in [PKCS8_PREFIX_P256, PKCS8_PREFIX_P384] {
                let pkcs8 = sec1_to_pkcs8(prefix, der);
                match any_ecdsa_type(&PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(&pkcs8[..]))) {
                    Ok(k) => return Ok(k),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.map_or_else(|| "invalid EC key".to_string(), unsupported))
        }
    }
}

// The start of a PKCS#8 PrivateKeyInfo for an EC key: version 0, then the
// algorithm (id-ecPublicKey with the curve's OID). As in rustls.
const PKCS8_PREFIX_P256: &[u8] = b"\x02\x01\x00\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\
      \x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07";
const PKCS8_PREFIX_P384: &[u8] =
    b"\x02\x01\x00\x30\x10\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x05\x2b\x81\x04\x00\x22";

/// SEQUENCE { prefix, OCTET STRING { sec1 } }, in a buffer sized once.
fn sec1_to_pkcs8(prefix: &[u8], sec1: &[u8]) -> Zeroizing<Vec<u8>> {
    let octets_len = 1 + der_len_size(sec1.len()) + sec1.len();
    let inner = prefix.len() + octets_len;
    let mut v = Zeroizing::new(Vec::with_capacity(1 + der_len_size(inner) + inner));
    v.push(0x30);
    put_der_len(&mut v, inner);
    v.extend_from_slice(prefix);
    v.push(0x04);
    put_der_len(&mut v, sec1.len());
    v.extend_from_slice(sec1);
    v
}

fn der_len_size(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        _ => 3,
    }
}

fn put_der_len(v: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => v.push(len as u8),
        0x80..=0xFF => v.extend_from_slice(&[0x81, len as u8]),
        _ => v.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_skips_white_space_and_checks_characters() {
        assert_eq!(&base64(b"aGVs\nbG8=\r\n").unwrap()[..], b"hello");
        assert_eq!(&base64(b"AAEC").unwrap()[..], &[0, 1, 2]);
        assert!(base64(b"aG*s").is_err());
        assert!(base64(b"aG==bG8").is_err());
    }

    #[test]
    fn finds_the_key_among_other_sections() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN EC PRIVATE KEY-----\nAAEC\n-----END EC PRIVATE KEY-----\n";
        let (form, der) = decode_pem(pem).unwrap();
        assert_eq!((form, &der[..]), (Form::Sec1, &[0u8, 1, 2][..]));
        let e = decode_pem(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n").unwrap_err();
        assert!(e.contains("encrypted"), "{e}");
        let legacy = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAA==\n\
                       -----END RSA PRIVATE KEY-----\n";
        assert!(decode_pem(legacy).unwrap_err().contains("headers"));
        assert!(decode_pem(b"nothing here")
            .unwrap_err()
            .contains("no private key"));
    }

    /// A SEC1 key ("BEGIN EC PRIVATE KEY", as `openssl ecparam -genkey`
    /// writes) parses through our own PKCS#8 wrapping.
    #[test]
    fn sec1_keys_parse() {
        let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pkcs8 = k.serialized_der();
        // PKCS#8 ends with OCTET STRING { ECPrivateKey }: that is SEC1.
        let at = pkcs8
            .windows(3)
            .rposition(|w| w == [0x04, 0x6d, 0x30])
            .unwrap();
        let sec1 = &pkcs8[at + 2..];
        assert_eq!(&sec1_to_pkcs8(PKCS8_PREFIX_P256, sec1)[..], pkcs8);
        parse(Form::Sec1, sec1).unwrap();
        parse(Form::Pkcs8, pkcs8).unwrap();
        assert!(parse(Form::Pkcs1, pkcs8).is_err());
    }
}
