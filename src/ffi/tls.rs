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
use std::ffi::{c_char, CStr};
use std::os::raw::c_int;

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
/// Ownership: `pem_path` is borrowed for the call; the certificates are
/// kept in the options. Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT`
/// (NULL opts, unreadable file, no certificate in it, a certificate that
/// cannot be parsed; `mqtt_last_error()` names the path and the cause;
/// a library built without TLS).
/// Blocks: reads the file. Threads: any, not concurrently with other use
/// of `opts`.
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
/// Ownership: the paths are borrowed for the call; certificate and key are
/// kept in the options. The key is parsed now into the TLS library's
/// signing key, which is all that is kept of it: the file's bytes and the
/// decoded key are wiped from memory before this returns. (The signing key
/// itself is the TLS library's, freed, not wiped, with the options and
/// the clients made from them.) Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT`
/// (NULL opts, only one of the paths NULL, unreadable or empty file,
/// unsupported key type, key not matching the certificate; the text names
/// the path and the cause; a library built without TLS). Blocks: reads
/// the files. Threads: any, not concurrently with other use of `opts`.
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

/// Sets the server name sent in SNI and checked against the server's
/// certificate, instead of the URL's host (for example when connecting by
/// IP address to a broker whose certificate names a host). NULL goes back
/// to the URL's host.
///
/// Ownership: copied. Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT`
/// (NULL opts, not a valid DNS name or IP address, a library built
/// without TLS). Blocks: no.
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
/// array with `count` > 0, a NULL, empty or over 255-byte name, a
/// library built without TLS).
/// Blocks: no. Threads: any, not concurrently with other use of `opts`.
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
/// Blocks: no. Threads: any, not concurrently with other use of `opts`.
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
/// Ownership: both strings are copied; the value's copies are wiped from
/// memory when the options or the client are freed, and the upgrade
/// request's once it is written. Returns: `MQTT5C_OK`, or
/// `MQTT5C_ERR_INVALID_ARGUMENT` (NULL argument, invalid header name, CR or
/// LF in the value, a reserved header; a library built without WebSocket). Blocks: no. Threads: any, not
/// concurrently with other use of `opts`.
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
