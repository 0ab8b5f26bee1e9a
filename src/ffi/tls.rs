//! TLS and WebSocket settings of `mqtt_options`. They apply to the URL
//! schemes that use them: TLS to `mqtts://`, `ssl://`, `tls://` and
//! `wss://`; WebSocket headers to `ws://` and `wss://`.
//!
//! A library built without the Cargo feature `tls` (or `websocket`) has
//! these functions too, so one header serves every build; there each one
//! fails with MQTT5C_ERR_INVALID_ARGUMENT and a text saying so
//! (`transport::absent`).

use super::error::{set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use super::options::mqtt_options;
use crate::transport::{ExternalSigner, KeyType};
use std::ffi::{c_char, c_void, CStr};
use std::os::raw::c_int;
use std::sync::Arc;

fn result(r: Result<(), String>) -> c_int {
    match r {
        Ok(()) => MQTT5C_OK,
        Err(e) => {
            set_last_error(e);
            MQTT5C_ERR_INVALID_ARGUMENT
        }
    }
}

/// Trusts the CA certificates in the PEM file `pem_path` (one or more
/// certificates) instead of the system trust store. NULL goes back to the
/// system trust store (the default). The file is read and checked now.
///
/// Ownership: `pem_path` is borrowed for the call; the certificates are kept in
/// the options.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts,
/// unreadable file, no certificate in it, a certificate that cannot be parsed;
/// `mqtt_last_error()` names the path and the cause; a library built without
/// TLS).
/// Blocks: reads the file.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tls_ca_file(
    opts: *mut mqtt_options,
    pem_path: *const c_char,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let path = try_opt_str!(pem_path, "pem_path");
        result(opts.inner.tls.set_ca_file(path))
    })
}

/// Sets the client certificate (PEM, the chain starting with our own
/// certificate) and its private key (PEM: RSA, ECDSA or Ed25519, in
/// PKCS#8, PKCS#1 or SEC1 form) for mutual TLS. Both NULL remove it. The
/// files are read now and the key is checked to match the certificate.
///
/// Ownership: the paths are borrowed for the call; certificate and key are kept
/// in the options. The key is parsed now into the TLS library's signing key,
/// which is all that is kept of it: the file's bytes and the decoded key are
/// wiped from memory before this returns. (The signing key itself is the TLS
/// library's, freed, not wiped, with the options and the clients made from
/// them.)
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, only one
/// of the paths NULL, unreadable or empty file, unsupported key type, key not
/// matching the certificate; the text names the path and the cause; a library
/// built without TLS).
/// Blocks: reads the files.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tls_client_cert(
    opts: *mut mqtt_options,
    cert_pem_path: *const c_char,
    key_pem_path: *const c_char,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let cert = try_opt_str!(cert_pem_path, "cert_pem_path");
        let key = try_opt_str!(key_pem_path, "key_pem_path");
        let paths = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                set_last_error("key_pem_path is NULL but cert_pem_path is not");
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
            (None, Some(_)) => {
                set_last_error("cert_pem_path is NULL but key_pem_path is not");
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        result(opts.inner.tls.set_client_cert(paths))
    })
}

/// Like `mqtt_options_set_tls_ca_file`, from a buffer: trusts the CA
/// certificates in `pem` (`len` bytes of PEM text, one or more
/// certificates, no NUL needed) instead of the system trust store. NULL
/// `pem` goes back to the system trust store. Checked now.
///
/// Ownership: `pem` is borrowed for the call; the certificates are kept in the
/// options.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, no
/// certificate in the buffer, a certificate that cannot be parsed;
/// `mqtt_last_error()` says which; a library built without TLS).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tls_ca_pem(
    opts: *mut mqtt_options,
    pem: *const c_char,
    len: usize,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let pem = if pem.is_null() {
            None
        } else {
            Some(try_slice!(pem, len, "pem"))
        };
        result(opts.inner.tls.set_ca_pem(pem))
    })
}

/// Like `mqtt_options_set_tls_client_cert`, from buffers: the client
/// certificate chain (`cert_pem`, `cert_len` bytes of PEM, our own
/// certificate first) and its private key (`key_pem`, `key_len` bytes of
/// PEM: RSA, ECDSA or Ed25519 in PKCS#8, PKCS#1 or SEC1 form). Both NULL
/// remove the client certificate. Checked now, the key against the
/// certificate.
///
/// Ownership: both buffers are borrowed for the call and not kept: the key is
/// parsed now into the TLS library's signing key, and the decoded key bytes are
/// wiped before this returns (the caller wipes its own buffer).
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, only one
/// of the buffers NULL, no certificate or no key in them, unsupported key type,
/// key not matching the certificate; the text says which; a library built
/// without TLS).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tls_client_cert_pem(
    opts: *mut mqtt_options,
    cert_pem: *const c_char,
    cert_len: usize,
    key_pem: *const c_char,
    key_len: usize,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let pems = match (cert_pem.is_null(), key_pem.is_null()) {
            (true, true) => None,
            (false, false) => Some((
                try_slice!(cert_pem, cert_len, "cert_pem"),
                try_slice!(key_pem, key_len, "key_pem"),
            )),
            (false, true) => {
                set_last_error("key_pem is NULL but cert_pem is not");
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
            (true, false) => {
                set_last_error("cert_pem is NULL but key_pem is not");
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        result(opts.inner.tls.set_client_cert_pem(pems))
    })
}

/// Key type of `mqtt_options_set_tls_client_signer`: ECDSA on P-256,
/// signs with scheme 0x0403 (ecdsa_secp256r1_sha256).
pub const MQTT_TLS_KEY_ECDSA_P256: c_int = 1;
/// ECDSA on P-384, scheme 0x0503 (ecdsa_secp384r1_sha384).
pub const MQTT_TLS_KEY_ECDSA_P384: c_int = 2;
/// RSA: schemes 0x0804, 0x0805, 0x0806 (rsa_pss_rsae_sha256/384/512) and,
/// with a TLS 1.2 server, 0x0401, 0x0501, 0x0601 (rsa_pkcs1_sha256/384/512).
pub const MQTT_TLS_KEY_RSA: c_int = 3;
/// Ed25519, scheme 0x0807 (ed25519).
pub const MQTT_TLS_KEY_ED25519: c_int = 4;

/// Signs for `mqtt_options_set_tls_client_signer` during a TLS handshake.
///
/// `scheme` is the TLS SignatureScheme to sign with (one of those of the
/// key type, see `MQTT_TLS_KEY_*`); `message` (`message_len` bytes) is the
/// data to sign, not its hash: hash it with the scheme's hash (SHA-256 for
/// 0x0403, 0x0804, 0x0401; SHA-384 for 0x0503, 0x0805, 0x0501; SHA-512 for
/// 0x0806, 0x0601; none for Ed25519). ECDSA signatures are DER-encoded (as
/// OpenSSL writes them); RSA-PSS uses MGF1 with the same hash and a salt
/// as long as the hash. Write the signature to `signature`, whose size is
/// in `*signature_len` on entry (2048 bytes, enough for RSA keys up to
/// 16384 bits), and set `*signature_len` to its length. Return 0 when
/// signed; any other value fails the handshake (`MQTT5C_ERR_TLS`, with the
/// value and the scheme in `mqtt_last_error()`).
///
/// Threads: called during a handshake on the thread that runs it: the
/// application's thread inside `mqtt_connect` (or another call that
/// connects), or one of the library's runtime threads (automatic
/// reconnection, a connect retried in the background, failover). Several
/// connections (clients made from the same options) may call it at once,
/// so it must be thread-safe. It may block
/// as long as the hardware takes (other clients keep running), but the
/// connect timeout cannot interrupt it: it is checked when the callback
/// returns, so a callback that hangs holds up its connect (and a
/// reconnection) as long; bound the hardware's call with a timeout of
/// its own. It may call the library for other
/// clients. On the client whose handshake it signs for, `mqtt_connect`,
/// `mqtt_disconnect` and any call that would wait for the reconnection
/// fail at once with `MQTT5C_ERR_INVALID_ARGUMENT` (they would wait for
/// this handshake); `mqtt_client_free` works, as from any callback: the
/// handshake then fails, and when the callback ran inside that client's
/// `mqtt_connect`, that call returns `MQTT5C_ERR_BAD_STATE` and the client
/// is freed as it returns. `message` lives only during the call.
pub type mqtt_tls_sign_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        scheme: u16,
        message: *const c_void,
        message_len: usize,
        signature: *mut c_void,
        signature_len: *mut usize,
    ) -> c_int,
>;

type SignFn =
    unsafe extern "C" fn(*mut c_void, u16, *const c_void, usize, *mut c_void, *mut usize) -> c_int;

/// The size of the signature buffer given to the callback.
const SIGNATURE_BUFFER: usize = 2048;

struct CallbackSigner {
    sign: SignFn,
    user_data: *mut c_void,
}

// SAFETY: the pointer is only passed back to the application's callback,
// which the header requires to be thread-safe.
unsafe impl Send for CallbackSigner {}
unsafe impl Sync for CallbackSigner {}

impl ExternalSigner for CallbackSigner {
    fn sign(&self, scheme: u16, message: &[u8]) -> Result<Vec<u8>, String> {
        let mut sig = vec![0u8; SIGNATURE_BUFFER];
        let mut len = sig.len();
        // SAFETY: the callback is the application's, called with a message
        // of `message.len()` bytes and a buffer of `len` bytes it may fill.
        let rc = unsafe {
            (self.sign)(
                self.user_data,
                scheme,
                message.as_ptr().cast(),
                message.len(),
                sig.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(format!("the callback returned {rc}"));
        }
        if len == 0 || len > SIGNATURE_BUFFER {
            return Err(format!(
                "the callback returned 0 but a signature length of {len} bytes (the buffer \
                 holds {SIGNATURE_BUFFER})"
            ));
        }
        sig.truncate(len);
        Ok(sig)
    }
}

/// Sets a client certificate whose private key never enters the library
/// (a TPM, a PKCS#11 token, a secure element): during each TLS handshake
/// that asks for a client certificate, `sign` signs with it (see
/// `mqtt_tls_sign_cb`, which says which threads it runs on). `cert_chain_pem`
/// (`len` bytes of PEM) is the certificate chain, our own certificate
/// first, whose public key must be of `key_type` (`MQTT_TLS_KEY_*`).
/// Replaces a client certificate set by `mqtt_options_set_tls_client_cert`
/// or `_pem` (and is replaced by them; both NULL there removes it).
///
/// Ownership: the chain is copied. `user_data` is passed to `sign` and must
/// stay valid while these options or any client made from them live; the
/// library never frees it. `mqtt_client_free` waits for a signature under
/// way for that client (a reconnection's, on a library thread) and none
/// starts after it, as with every callback.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, chain or
/// `sign`, no certificate in the chain, an unknown `key_type` or one the
/// certificate's key is not of; a library built without TLS). A callback that
/// fails or signs wrongly makes the connect fail with `MQTT5C_ERR_TLS` and a
/// text saying so.
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tls_client_signer(
    opts: *mut mqtt_options,
    cert_chain_pem: *const c_char,
    len: usize,
    key_type: c_int,
    sign: mqtt_tls_sign_cb,
    user_data: *mut c_void,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        if cert_chain_pem.is_null() {
            set_last_error("cert_chain_pem is NULL");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        let chain = try_slice!(cert_chain_pem, len, "cert_chain_pem");
        let Some(sign) = sign else {
            set_last_error("sign is NULL");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        let key_type = match key_type {
            MQTT_TLS_KEY_ECDSA_P256 => KeyType::EcdsaP256,
            MQTT_TLS_KEY_ECDSA_P384 => KeyType::EcdsaP384,
            MQTT_TLS_KEY_RSA => KeyType::Rsa,
            MQTT_TLS_KEY_ED25519 => KeyType::Ed25519,
            other => {
                set_last_error(format!(
                    "key_type {other} is not one of MQTT_TLS_KEY_ECDSA_P256, _ECDSA_P384, \
                     _RSA, _ED25519"
                ));
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        let signer = Arc::new(CallbackSigner { sign, user_data });
        result(opts.inner.tls.set_client_signer(chain, key_type, signer))
    })
}

/// Sets the server name sent in SNI and checked against the server's
/// certificate, instead of the URL's host (for example when connecting by
/// IP address to a broker whose certificate names a host). NULL goes back
/// to the URL's host.
///
/// Ownership: copied.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, not a
/// valid DNS name or IP address, a library built without TLS).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tls_server_name(
    opts: *mut mqtt_options,
    name: *const c_char,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let name = try_opt_str!(name, "name");
        result(opts.inner.tls.set_server_name(name))
    })
}

/// Sets the ALPN protocols offered in the TLS handshake, most preferred
/// first (for brokers that share port 443 with other services, e.g.
/// "mqtt" or "x-amzn-mqtt-ca"). `count` 0 offers none (the default);
/// `protocols` may then be NULL.
///
/// Ownership: the array and strings are borrowed for the call and copied.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, NULL
/// array with `count` > 0, a NULL, empty or over 255-byte name, a library built
/// without TLS).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tls_alpn(
    opts: *mut mqtt_options,
    protocols: *const *const c_char,
    count: usize,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let list: &[*const c_char] = if count == 0 {
            &[]
        } else if protocols.is_null() {
            set_last_error("protocols is NULL but count is not 0");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        } else {
            // SAFETY: non-NULL; the caller promises `count` readable pointers.
            unsafe { std::slice::from_raw_parts(protocols, count) }
        };
        let mut names = Vec::with_capacity(list.len());
        for (i, &p) in list.iter().enumerate() {
            if p.is_null() {
                set_last_error(format!("protocols[{i}] is NULL"));
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
            // SAFETY: non-NULL; the caller promises a NUL-terminated string.
            names.push(unsafe { CStr::from_ptr(p) }.to_bytes().to_vec());
        }
        result(opts.inner.tls.set_alpn(names))
    })
}

/// INSECURE, for test rigs only: with `skip` true the server's certificate
/// and host name are not verified, so anyone on the path can pose as the
/// broker. The first time it is turned on in a process, a warning is
/// printed to stderr. Default false.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts; a library
/// built without TLS).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tls_insecure_skip_verify(
    opts: *mut mqtt_options,
    skip: bool,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        result(opts.inner.tls.set_insecure_skip_verify(skip))
    })
}

/// Adds an HTTP header to the WebSocket upgrade request (ws://, wss://),
/// for example `Authorization: Bearer ...`. Headers are sent in the order
/// added; adding a name twice sends it twice. The handshake's own headers
/// (Host, Upgrade, Connection, Sec-WebSocket-*) cannot be set.
///
/// Ownership: both strings are copied; the value's copies are wiped from memory
/// when the options or the client are freed, and the upgrade request's once it
/// is written.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL argument,
/// invalid header name, CR or LF in the value, a reserved header; a library
/// built without WebSocket).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_add_ws_header(
    opts: *mut mqtt_options,
    name: *const c_char,
    value: *const c_char,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let name = try_str!(name, "name");
        let value = try_str!(value, "value");
        result(opts.inner.add_ws_header(name, value))
    })
}
