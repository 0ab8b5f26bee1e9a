//! Client keys outside the library (issue 13): `mqtt_options_set_tls_client_signer`
//! with a callback that signs with a software key (rustls's, standing in
//! for a TPM or a token), for each key type, against mosquitto with
//! `require_certificate true`; a callback that fails and one that signs
//! with another key fail with MQTT5C_ERR_TLS and a clear text. And the
//! threads: a signer that blocks until another task of the runtime has
//! run completes when the handshake runs on the runtime's only worker
//! (block_in_place), where calling it in place would stall that task.

mod common;

use common::certs::{tls_listener_conf, Ca, CertFiles, KeyKind, Validity};
use common::{free_port, Broker, TempDir};
use mqtt5c::client::ClientOptions;
use mqtt5c::ffi::*;
use mqtt5c::packet::{MqttStr, Properties, ReasonCode};
use mqtt5c::transport::{ExternalSigner, KeyType};
use std::ffi::{c_int, c_void, CStr, CString};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio_rustls::rustls::crypto::ring::sign::any_supported_type;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::sign::SigningKey;
use tokio_rustls::rustls::SignatureScheme;

/// Signs with a software key; counts its signatures and notes the schemes.
struct SoftSigner {
    key: Arc<dyn SigningKey>,
    /// Returned instead of signing, when set.
    fail_with: Option<c_int>,
    schemes: Mutex<Vec<u16>>,
    /// When set, each signature first waits for a message on it.
    gate: Option<Mutex<mpsc::Receiver<()>>>,
}

impl SoftSigner {
    fn new(key_file: &std::path::Path) -> SoftSigner {
        let pem = std::fs::read(key_file).unwrap();
        let der = PrivateKeyDer::from_pem_slice(&pem).unwrap();
        SoftSigner {
            key: any_supported_type(&der).unwrap(),
            fail_with: None,
            schemes: Mutex::new(Vec::new()),
            gate: None,
        }
    }

    fn sign_now(&self, scheme: u16, message: &[u8]) -> Result<Vec<u8>, String> {
        if let Some(g) = &self.gate {
            g.lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(20))
                .map_err(|_| "the gate was not opened".to_string())?;
        }
        self.schemes.lock().unwrap().push(scheme);
        let signer = self
            .key
            .choose_scheme(&[SignatureScheme::from(scheme)])
            .ok_or_else(|| format!("the key cannot sign with {scheme:#06x}"))?;
        signer.sign(message).map_err(|e| e.to_string())
    }
}

impl ExternalSigner for SoftSigner {
    fn sign(&self, scheme: u16, message: &[u8]) -> Result<Vec<u8>, String> {
        self.sign_now(scheme, message)
    }
}

unsafe extern "C" fn sign_cb(
    user_data: *mut c_void,
    scheme: u16,
    message: *const c_void,
    message_len: usize,
    signature: *mut c_void,
    signature_len: *mut usize,
) -> c_int {
    let s = &*(user_data as *const SoftSigner);
    if let Some(rc) = s.fail_with {
        return rc;
    }
    let msg = std::slice::from_raw_parts(message.cast::<u8>(), message_len);
    match s.sign_now(scheme, msg) {
        Ok(sig) if sig.len() <= *signature_len => {
            std::ptr::copy_nonoverlapping(sig.as_ptr(), signature.cast::<u8>(), sig.len());
            *signature_len = sig.len();
            0
        }
        _ => -1,
    }
}

fn last_error() -> String {
    // SAFETY: never NULL, NUL-terminated.
    unsafe { CStr::from_ptr(mqtt_last_error()) }
        .to_string_lossy()
        .into_owned()
}

struct Rig {
    _broker: Broker,
    url: String,
    ca: Ca,
    _dir: TempDir,
}

fn rig() -> Rig {
    let dir = TempDir::new("mqtt5c-signer").unwrap();
    let ca = Ca::new(dir.path(), "signer");
    let server = ca.server("server", &["127.0.0.1"], Validity::Current);
    let port = free_port();
    let broker = Broker::start_with(&tls_listener_conf(port, &ca.file, &server, true));
    Rig {
        _broker: broker,
        url: format!("mqtts://127.0.0.1:{port}"),
        ca,
        _dir: dir,
    }
}

/// Options trusting the rig's CA, with the signer `sign(user_data)` for
/// `chain` as the client key; panics if the signer is refused.
fn signer_options(
    rig: &Rig,
    chain: &[u8],
    key_type: c_int,
    sign: mqtt_tls_sign_cb,
    user_data: *mut c_void,
) -> *mut mqtt_options {
    let o = mqtt_options_new();
    let ca = CString::new(rig.ca.file.to_str().unwrap()).unwrap();
    assert_eq!(mqtt_options_set_tls_ca_file(o, ca.as_ptr()), MQTT5C_OK);
    let rc = mqtt_options_set_tls_client_signer(
        o,
        chain.as_ptr().cast(),
        chain.len(),
        key_type,
        sign,
        user_data,
    );
    assert_eq!(rc, MQTT5C_OK, "{}", last_error());
    o
}

/// Connects `c` to `url` on a thread of its own (a signer may block the
/// call); the receiver gets the connect's result code and error text.
fn connect_on_a_thread(c: *mut mqtt_client, url: &str) -> mpsc::Receiver<(c_int, String)> {
    let url = CString::new(url).unwrap();
    let c_addr = c as usize;
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let rc = mqtt_connect(c_addr as *mut mqtt_client, url.as_ptr());
        let _ = done.send((rc, last_error()));
    });
    finished
}

/// Connects through the C API with the signer `s` for `files`' chain;
/// returns the connect's result code and error text.
fn connect_c(rig: &Rig, files: &CertFiles, key_type: c_int, s: &SoftSigner) -> (c_int, String) {
    let chain = std::fs::read(&files.cert).unwrap();
    let o = signer_options(
        rig,
        &chain,
        key_type,
        Some(sign_cb),
        s as *const SoftSigner as *mut c_void,
    );
    let c = mqtt_client_new(o);
    assert!(!c.is_null());
    let url = CString::new(rig.url.as_str()).unwrap();
    let rc = mqtt_connect(c, url.as_ptr());
    let text = last_error();
    if rc == MQTT5C_OK {
        assert_eq!(mqtt_disconnect(c, 0, std::ptr::null()), MQTT5C_OK);
    }
    mqtt_client_free(c);
    mqtt_options_free(o);
    (rc, text)
}

#[test]
fn each_key_type_signs_the_handshake() {
    let rig = rig();
    for (kind, key_type, scheme) in [
        (KeyKind::EcdsaP256, MQTT_TLS_KEY_ECDSA_P256, 0x0403),
        (KeyKind::EcdsaP384, MQTT_TLS_KEY_ECDSA_P384, 0x0503),
        (KeyKind::Rsa, MQTT_TLS_KEY_RSA, 0x0804),
        (KeyKind::Ed25519, MQTT_TLS_KEY_ED25519, 0x0807),
    ] {
        let files = rig.ca.client(&format!("signer-{kind:?}"), kind);
        let s = SoftSigner::new(&files.key);
        let (rc, text) = connect_c(&rig, &files, key_type, &s);
        assert_eq!(rc, MQTT5C_OK, "{kind:?}: {text}");
        assert_eq!(*s.schemes.lock().unwrap(), vec![scheme], "{kind:?}");
    }
}

#[test]
fn a_failing_or_wrong_signer_fails_the_handshake() {
    let rig = rig();
    let files = rig.ca.client("signer-fail", KeyKind::EcdsaP256);
    let mut s = SoftSigner::new(&files.key);
    s.fail_with = Some(-7);
    let (rc, text) = connect_c(&rig, &files, MQTT_TLS_KEY_ECDSA_P256, &s);
    assert_eq!(rc, MQTT5C_ERR_TLS, "{text}");
    assert!(
        text.contains("client signer callback failed") && text.contains("returned -7"),
        "{text}"
    );
    assert!(text.contains("0x0403"), "{text}");

    // Another key of the same type: a signature the broker cannot verify.
    let other = rig.ca.client("signer-other", KeyKind::EcdsaP256);
    let s = SoftSigner::new(&other.key);
    let (rc, text) = connect_c(&rig, &files, MQTT_TLS_KEY_ECDSA_P256, &s);
    assert_eq!(rc, MQTT5C_ERR_TLS, "{text}");
    assert!(text.contains("could not verify a signature"), "{text}");
    assert_eq!(s.schemes.lock().unwrap().len(), 1);
}

#[test]
fn bad_signer_arguments_are_refused_when_set() {
    let dir = TempDir::new("mqtt5c-signer-args").unwrap();
    let ca = Ca::new(dir.path(), "args");
    let files = ca.client("c", KeyKind::EcdsaP256);
    let chain = std::fs::read(&files.cert).unwrap();
    let s = SoftSigner::new(&files.key);
    let ud = &s as *const SoftSigner as *mut c_void;
    let o = mqtt_options_new();
    let set = |kt: c_int, cb: mqtt_tls_sign_cb, pem: &[u8]| {
        mqtt_options_set_tls_client_signer(o, pem.as_ptr().cast(), pem.len(), kt, cb, ud)
    };
    assert_eq!(
        set(MQTT_TLS_KEY_RSA, Some(sign_cb), &chain),
        MQTT5C_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("not an RSA key"), "{}", last_error());
    assert_eq!(set(9, Some(sign_cb), &chain), MQTT5C_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("key_type 9"), "{}", last_error());
    assert_eq!(
        set(MQTT_TLS_KEY_ECDSA_P256, None, &chain),
        MQTT5C_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("sign is NULL"), "{}", last_error());
    assert_eq!(
        set(MQTT_TLS_KEY_ECDSA_P256, Some(sign_cb), b"junk"),
        MQTT5C_ERR_INVALID_ARGUMENT
    );
    assert!(
        last_error().contains("no PEM certificate"),
        "{}",
        last_error()
    );
    assert_eq!(
        set(MQTT_TLS_KEY_ECDSA_P256, Some(sign_cb), &chain),
        MQTT5C_OK
    );
    mqtt_options_free(o);
}

/// The handshake runs on the runtime's only worker (a spawned task) and
/// the signer blocks until a timer task of that runtime opens its gate:
/// only with the signer inside block_in_place can that task run.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_blocking_signer_on_the_only_worker_lets_other_tasks_run() {
    let rig = rig();
    let files = rig.ca.client("signer-block", KeyKind::EcdsaP256);
    let (open, gate) = mpsc::channel();
    let mut s = SoftSigner::new(&files.key);
    s.gate = Some(Mutex::new(gate));
    let s = Arc::new(s);
    let mut o = ClientOptions {
        client_id: MqttStr::new("signer-block").unwrap(),
        ..Default::default()
    };
    o.tls
        .set_ca_file(Some(rig.ca.file.to_str().unwrap()))
        .unwrap();
    o.tls
        .set_client_signer(
            &std::fs::read(&files.cert).unwrap(),
            KeyType::EcdsaP256,
            s.clone(),
        )
        .unwrap();
    let url = rig.url.clone();
    let connect = tokio::spawn(async move {
        let (c, _ev) = common::events::client(o);
        let r = c.connect(&url).await.map(|_| ());
        if r.is_ok() {
            c.disconnect(ReasonCode::Success, Properties::new())
                .await
                .unwrap();
        }
        r
    });
    // Runs on the worker: it can only while the signer is out of its way.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = open.send(());
    });
    connect
        .await
        .unwrap()
        .expect("connect with a blocking signer");
    assert_eq!(s.schemes.lock().unwrap().len(), 1);
}

/// A signer that, from its second signature on (a reconnection), tells
/// the test it is inside, then waits up to a second for `release`.
struct Watched {
    soft: SoftSigner,
    calls: std::sync::atomic::AtomicUsize,
    inside: std::sync::atomic::AtomicBool,
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

unsafe extern "C" fn watched_cb(
    user_data: *mut c_void,
    scheme: u16,
    message: *const c_void,
    message_len: usize,
    signature: *mut c_void,
    signature_len: *mut usize,
) -> c_int {
    use std::sync::atomic::Ordering;
    let w = &*(user_data as *const Watched);
    let later = w.calls.fetch_add(1, Ordering::SeqCst) > 0;
    if later {
        w.inside.store(true, Ordering::SeqCst);
        let _ = w.entered.lock().unwrap().send(());
        let _ = w
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(1));
    }
    let rc = sign_cb(
        &w.soft as *const SoftSigner as *mut c_void,
        scheme,
        message,
        message_len,
        signature,
        signature_len,
    );
    w.inside.store(false, Ordering::SeqCst);
    rc
}

/// Review of issue 13: a signer running for an automatic reconnection
/// (on a runtime thread) when mqtt_client_free is called has returned
/// once mqtt_client_free returns, as for every other callback: after it
/// the application frees `user_data`.
#[test]
fn mqtt_client_free_waits_for_a_signer_running_for_a_reconnection() {
    use std::sync::atomic::Ordering;
    let mut rig = rig();
    let files = rig.ca.client("signer-free", KeyKind::EcdsaP256);
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    // Leaked: without the fix the signer outlives the test's use of it.
    let w: &'static Watched = Box::leak(Box::new(Watched {
        soft: SoftSigner::new(&files.key),
        calls: Default::default(),
        inside: Default::default(),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    }));
    let chain = std::fs::read(&files.cert).unwrap();
    let o = signer_options(
        &rig,
        &chain,
        MQTT_TLS_KEY_ECDSA_P256,
        Some(watched_cb),
        w as *const Watched as *mut c_void,
    );
    assert_eq!(mqtt_options_set_auto_reconnect(o, 10, 100), MQTT5C_OK);
    let c = mqtt_client_new(o);
    assert!(!c.is_null());
    let url = CString::new(rig.url.as_str()).unwrap();
    assert_eq!(mqtt_connect(c, url.as_ptr()), MQTT5C_OK, "{}", last_error());
    rig._broker.restart();
    entered
        .recv_timeout(Duration::from_secs(30))
        .expect("the reconnection's handshake called the signer");
    mqtt_client_free(c);
    let still_inside = w.inside.load(Ordering::SeqCst);
    let _ = release.send(());
    mqtt_options_free(o);
    assert!(
        !still_inside,
        "the signer was still running after mqtt_client_free returned"
    );
}

/// A callback that claims a signature longer than its buffer, or an
/// empty one, while returning 0: the handshake fails with MQTT5C_ERR_TLS
/// and a text saying so; nothing past the buffer is read (audit of
/// issue 13).
#[test]
fn a_signer_claiming_a_length_beyond_its_buffer_fails_the_handshake() {
    unsafe extern "C" fn liar(
        user_data: *mut c_void,
        _scheme: u16,
        _message: *const c_void,
        _message_len: usize,
        signature: *mut c_void,
        signature_len: *mut usize,
    ) -> c_int {
        let claim = *(user_data as *const usize);
        std::ptr::write_bytes(signature.cast::<u8>(), 0x30, *signature_len);
        *signature_len = claim;
        0
    }
    let rig = rig();
    let files = rig.ca.client("signer-liar", KeyKind::EcdsaP256);
    let chain = std::fs::read(&files.cert).unwrap();
    for claim in [2049usize, 1 << 20, usize::MAX, 0] {
        let o = signer_options(
            &rig,
            &chain,
            MQTT_TLS_KEY_ECDSA_P256,
            Some(liar),
            &claim as *const usize as *mut c_void,
        );
        let c = mqtt_client_new(o);
        let url = CString::new(rig.url.as_str()).unwrap();
        let rc = mqtt_connect(c, url.as_ptr());
        let text = last_error();
        mqtt_client_free(c);
        mqtt_options_free(o);
        assert_eq!(rc, MQTT5C_ERR_TLS, "{claim}: {text}");
        assert!(
            text.contains(&format!("a signature length of {claim} bytes"))
                && text.contains("the buffer holds 2048"),
            "{claim}: {text}"
        );
    }
}

/// What a signer may do to its own client (audit of issue 13): a call
/// that waits for the handshake it signs for, `mqtt_disconnect` from the
/// signer of the client's own `mqtt_connect`, hung both for ever; it is
/// refused at once (MQTT5C_ERR_INVALID_ARGUMENT, as from the pre-connect
/// callback) and the connect completes.
struct SelfCaller {
    soft: SoftSigner,
    client: std::sync::atomic::AtomicPtr<mqtt_client>,
    rc: std::sync::atomic::AtomicI32,
    text: Mutex<String>,
    calls: std::sync::atomic::AtomicUsize,
}

/// A `SelfCaller` signing with `files`' key, its `rc` starting at `rc`;
/// leaked, as the signer may outlive the test's use of it.
fn self_caller(files: &CertFiles, rc: c_int) -> &'static SelfCaller {
    Box::leak(Box::new(SelfCaller {
        soft: SoftSigner::new(&files.key),
        client: Default::default(),
        rc: std::sync::atomic::AtomicI32::new(rc),
        text: Default::default(),
        calls: Default::default(),
    }))
}

/// `signer_options` for `files`' ECDSA P-256 chain with the callback
/// `sign` given `s`.
fn self_caller_options(
    rig: &Rig,
    files: &CertFiles,
    sign: mqtt_tls_sign_cb,
    s: &'static SelfCaller,
) -> *mut mqtt_options {
    let chain = std::fs::read(&files.cert).unwrap();
    signer_options(
        rig,
        &chain,
        MQTT_TLS_KEY_ECDSA_P256,
        sign,
        s as *const SelfCaller as *mut c_void,
    )
}

unsafe extern "C" fn disconnecting_cb(
    user_data: *mut c_void,
    scheme: u16,
    message: *const c_void,
    message_len: usize,
    signature: *mut c_void,
    signature_len: *mut usize,
) -> c_int {
    use std::sync::atomic::Ordering;
    let s = &*(user_data as *const SelfCaller);
    s.calls.fetch_add(1, Ordering::SeqCst);
    let rc = mqtt_disconnect(s.client.load(Ordering::SeqCst), 0, std::ptr::null());
    s.rc.store(rc, Ordering::SeqCst);
    *s.text.lock().unwrap() = last_error();
    sign_cb(
        &s.soft as *const SoftSigner as *mut c_void,
        scheme,
        message,
        message_len,
        signature,
        signature_len,
    )
}

#[test]
fn a_signer_calling_mqtt_disconnect_on_its_own_client_does_not_hang() {
    use std::sync::atomic::Ordering;
    let rig = rig();
    let files = rig.ca.client("signer-self", KeyKind::EcdsaP256);
    let s = self_caller(&files, 1);
    let o = self_caller_options(&rig, &files, Some(disconnecting_cb), s);
    let c = mqtt_client_new(o);
    s.client.store(c, Ordering::SeqCst);
    let (rc, text) = connect_on_a_thread(c, &rig.url)
        .recv_timeout(Duration::from_secs(60))
        .expect("mqtt_connect returned although its signer called mqtt_disconnect");
    eprintln!(
        "connect: {rc} {text}; disconnect from the signer: {}",
        s.rc.load(Ordering::SeqCst)
    );
    assert_eq!(s.calls.load(Ordering::SeqCst), 1);
    // Refused at once, as from the pre-connect callback; the handshake
    // then completes.
    assert_eq!(s.rc.load(Ordering::SeqCst), MQTT5C_ERR_INVALID_ARGUMENT);
    assert!(
        s.text
            .lock()
            .unwrap()
            .contains("called from the TLS client signer callback"),
        "{}",
        s.text.lock().unwrap()
    );
    assert_eq!(rc, MQTT5C_OK, "{text}");
    assert_eq!(mqtt_disconnect(c, 0, std::ptr::null()), MQTT5C_OK);
    mqtt_client_free(c);
    mqtt_options_free(o);
}

unsafe extern "C" fn freeing_cb(
    user_data: *mut c_void,
    scheme: u16,
    message: *const c_void,
    message_len: usize,
    signature: *mut c_void,
    signature_len: *mut usize,
) -> c_int {
    use std::sync::atomic::Ordering;
    let s = &*(user_data as *const SelfCaller);
    // The first signature is mqtt_connect's; a later one a reconnection's.
    if s.calls.fetch_add(1, Ordering::SeqCst) == usize::from(s.rc.load(Ordering::SeqCst) == 0) {
        mqtt_client_free(s.client.swap(std::ptr::null_mut(), Ordering::SeqCst));
        s.rc.store(2, Ordering::SeqCst);
    }
    sign_cb(
        &s.soft as *const SoftSigner as *mut c_void,
        scheme,
        message,
        message_len,
        signature,
        signature_len,
    )
}

/// `mqtt_client_free` from the signer: the header lets any callback free
/// its client. From a reconnection's handshake (a library thread) and from
/// the client's own `mqtt_connect` (the application's thread, where the
/// free waited for that very call: both hung for ever), the free returns,
/// and nothing runs afterwards (audit of issue 13).
#[test]
fn a_signer_freeing_its_own_client_does_not_hang() {
    use std::sync::atomic::Ordering;
    // rc 0: free at the second signature (a reconnection); 1: at the first.
    for (case, first) in [("reconnection", 0), ("mqtt_connect", 1)] {
        let mut rig = rig();
        let files = rig.ca.client("signer-free-self", KeyKind::EcdsaP256);
        let s = self_caller(&files, first);
        let o = self_caller_options(&rig, &files, Some(freeing_cb), s);
        assert_eq!(mqtt_options_set_auto_reconnect(o, 10, 100), MQTT5C_OK);
        let c = mqtt_client_new(o);
        s.client.store(c, Ordering::SeqCst);
        let (rc, text) = connect_on_a_thread(c, &rig.url)
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{case}: mqtt_connect did not return"));
        eprintln!("{case}: connect {rc} {text}");
        if first == 0 {
            assert_eq!(rc, MQTT5C_OK, "{case}: {text}");
            rig._broker.restart();
        } else {
            // Closed under it; the client was freed as it returned.
            assert_eq!(rc, MQTT5C_ERR_BAD_STATE, "{case}: {text}");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while s.rc.load(Ordering::SeqCst) != 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "{case}: the signer's mqtt_client_free did not return"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let calls = s.calls.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            s.calls.load(Ordering::SeqCst),
            calls,
            "{case}: signed after the free"
        );
        mqtt_options_free(o);
    }
}

/// The key type is checked against the certificate's own public key, not
/// against any bytes of the certificate (audit of issue 13): an ECDSA
/// P-256 certificate signed by an Ed25519 CA carries the Ed25519 OID in
/// its signature algorithm, and was taken for an Ed25519 key.
#[test]
fn the_key_type_is_checked_against_the_certificates_own_key() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let chain = format!("{}{}", leaf.pem(), issuer.pem());
    let s = SoftSigner {
        key: any_supported_type(
            &PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap(),
        fail_with: None,
        schemes: Mutex::new(Vec::new()),
        gate: None,
    };
    let o = mqtt_options_new();
    let set = |kt: c_int| {
        mqtt_options_set_tls_client_signer(
            o,
            chain.as_ptr().cast(),
            chain.len(),
            kt,
            Some(sign_cb),
            &s as *const SoftSigner as *mut c_void,
        )
    };
    assert_eq!(set(MQTT_TLS_KEY_ED25519), MQTT5C_ERR_INVALID_ARGUMENT);
    assert!(
        last_error().contains("not an Ed25519 key"),
        "{}",
        last_error()
    );
    assert_eq!(set(MQTT_TLS_KEY_ECDSA_P384), MQTT5C_ERR_INVALID_ARGUMENT);
    assert_eq!(set(MQTT_TLS_KEY_RSA), MQTT5C_ERR_INVALID_ARGUMENT);
    assert_eq!(set(MQTT_TLS_KEY_ECDSA_P256), MQTT5C_OK, "{}", last_error());
    mqtt_options_free(o);
}

/// A signer that, at its second signature (a reconnection's, on a
/// runtime thread), frees its own client, tells the test, then takes half
/// a second more (slow hardware) before it signs (`sign_after`) or fails.
struct FreeThenSlow {
    soft: SoftSigner,
    client: std::sync::atomic::AtomicPtr<mqtt_client>,
    calls: std::sync::atomic::AtomicUsize,
    sign_after: bool,
    freed: Mutex<mpsc::Sender<()>>,
}

unsafe extern "C" fn free_then_slow_cb(
    user_data: *mut c_void,
    scheme: u16,
    message: *const c_void,
    message_len: usize,
    signature: *mut c_void,
    signature_len: *mut usize,
) -> c_int {
    use std::sync::atomic::Ordering;
    let s = &*(user_data as *const FreeThenSlow);
    if s.calls.fetch_add(1, Ordering::SeqCst) == 1 {
        mqtt_client_free(s.client.swap(std::ptr::null_mut(), Ordering::SeqCst));
        let _ = s.freed.lock().unwrap().send(());
        // The window in which the test's mqtt_global_cleanup stops the
        // runtime under this handshake.
        std::thread::sleep(Duration::from_millis(500));
        if !s.sign_after {
            return -1;
        }
    }
    sign_cb(
        &s.soft as *const SoftSigner as *mut c_void,
        scheme,
        message,
        message_len,
        signature,
        signature_len,
    )
}

/// Set by `a_signer_freeing_its_client_then_global_cleanup_panics_nothing`
/// for its child: "sign" or "fail" after the free.
const CLEANUP_CHILD: &str = "MQTT5C_SIGNER_CLEANUP_CHILD";

/// The child of `a_signer_freeing_its_client_then_global_cleanup_panics_nothing`:
/// a reconnection's signer frees its client and, while it still runs,
/// the program calls `mqtt_global_cleanup`.
#[test]
#[ignore = "run in a child process by a_signer_freeing_its_client_then_global_cleanup_panics_nothing"]
fn signer_cleanup_child() {
    use std::sync::atomic::Ordering;
    let Ok(mode) = std::env::var(CLEANUP_CHILD) else {
        return;
    };
    let mut rig = rig();
    let files = rig.ca.client("signer-cleanup", KeyKind::EcdsaP256);
    let (freed_tx, freed) = mpsc::channel();
    // Leaked: the signer outlives the client.
    let s: &'static FreeThenSlow = Box::leak(Box::new(FreeThenSlow {
        soft: SoftSigner::new(&files.key),
        client: Default::default(),
        calls: Default::default(),
        sign_after: mode == "sign",
        freed: Mutex::new(freed_tx),
    }));
    let chain = std::fs::read(&files.cert).unwrap();
    let o = signer_options(
        &rig,
        &chain,
        MQTT_TLS_KEY_ECDSA_P256,
        Some(free_then_slow_cb),
        s as *const FreeThenSlow as *mut c_void,
    );
    assert_eq!(mqtt_options_set_auto_reconnect(o, 10, 100), MQTT5C_OK);
    let c = mqtt_client_new(o);
    assert!(!c.is_null());
    s.client.store(c, Ordering::SeqCst);
    let url = CString::new(rig.url.as_str()).unwrap();
    assert_eq!(mqtt_connect(c, url.as_ptr()), MQTT5C_OK, "{}", last_error());
    rig._broker.restart();
    freed
        .recv_timeout(Duration::from_secs(60))
        .expect("the reconnection's signer freed the client");
    let rc = mqtt_global_cleanup();
    assert_eq!(rc, MQTT5C_OK, "{}", last_error());
    mqtt_options_free(o);
    eprintln!("child done ({mode})");
}

/// A reconnection's signer frees its own client (allowed, as from any
/// callback), and the program then calls `mqtt_global_cleanup` while the
/// signer still runs: the cleanup stops the runtime (its timers) under
/// that handshake, and the reconnection, going on after the signer
/// returned, panicked in the runtime's timers ("A Tokio 1.x context was
/// found, but it is being shutdown"): waiting for the CONNACK when the
/// signer signed, sleeping before its next round when it failed. In a
/// child process, as `mqtt_global_cleanup` stops the whole library.
#[test]
fn a_signer_freeing_its_client_then_global_cleanup_panics_nothing() {
    use std::process::{Command, Stdio};
    for mode in ["sign", "fail"] {
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "signer_cleanup_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(CLEANUP_CHILD, mode)
            .env("MQTT5C_CLEANUP_TIMEOUT_MS", "20000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        let Ok(out) = finished.recv_timeout(Duration::from_secs(120)) else {
            // SAFETY: kill(2) on our own child, not reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{mode}: the child did not finish within 120 s");
        };
        let out = out.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let all = format!("{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "{mode}: the child failed:\n{all}");
        assert!(
            stderr.contains(&format!("child done ({mode})")),
            "{mode}: the child ran nothing:\n{all}"
        );
        assert!(!stderr.contains("panicked"), "{mode}: a panic:\n{all}");
    }
}

/// Panics at its `panic_at`-th signature, signs the others.
struct PanicAt {
    soft: SoftSigner,
    calls: std::sync::atomic::AtomicUsize,
    panic_at: usize,
}

impl ExternalSigner for PanicAt {
    fn sign(&self, scheme: u16, message: &[u8]) -> Result<Vec<u8>, String> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n == self.panic_at {
            panic!("the signer's own panic (expected by the test)");
        }
        self.soft.sign_now(scheme, message)
    }
}

/// A Rust signer that panics (here in the first reconnection's
/// handshake) fails that signature only: the panic unwound through the
/// handshake and ended the reconnection task, and the client stayed
/// reconnecting for good, with no further attempt or event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_panicking_in_a_reconnection_fails_that_attempt_only() {
    let mut rig = rig();
    let files = rig.ca.client("signer-panic", KeyKind::EcdsaP256);
    let s = Arc::new(PanicAt {
        soft: SoftSigner::new(&files.key),
        calls: Default::default(),
        panic_at: 2,
    });
    let mut o = ClientOptions {
        client_id: MqttStr::new("signer-panic").unwrap(),
        reconnect: Some(mqtt5c::client::Reconnect {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        }),
        ..Default::default()
    };
    o.tls
        .set_ca_file(Some(rig.ca.file.to_str().unwrap()))
        .unwrap();
    o.tls
        .set_client_signer(
            &std::fs::read(&files.cert).unwrap(),
            KeyType::EcdsaP256,
            s.clone(),
        )
        .unwrap();
    let (c, ev) = common::events::client(o);
    c.connect(&rig.url).await.unwrap();
    let ev2 = ev.clone();
    tokio::task::spawn_blocking(move || ev2.connected())
        .await
        .unwrap();
    rig._broker.restart();
    let ev2 = ev.clone();
    let got = tokio::task::spawn_blocking(move || {
        ev2.wait_conn(|e| matches!(e, mqtt5c::client::ConnectionEvent::Connected { .. }))
    })
    .await;
    eprintln!(
        "after the signer's panic: {got:?}, signatures {}",
        s.calls.load(std::sync::atomic::Ordering::SeqCst)
    );
    assert!(
        got.is_ok(),
        "no reconnection after the signer panicked once"
    );
    let _ = c.disconnect(ReasonCode::Success, Properties::new()).await;
}

/// A signer of `mqtt_connect` that tells it entered, then waits for the gate.
struct Entered {
    soft: SoftSigner,
    entered: Mutex<mpsc::Sender<()>>,
    open: Mutex<mpsc::Receiver<()>>,
}

unsafe extern "C" fn entered_cb(
    user_data: *mut c_void,
    scheme: u16,
    message: *const c_void,
    message_len: usize,
    signature: *mut c_void,
    signature_len: *mut usize,
) -> c_int {
    let s = &*(user_data as *const Entered);
    let _ = s.entered.lock().unwrap().send(());
    let _ = s.open.lock().unwrap().recv_timeout(Duration::from_secs(20));
    sign_cb(
        &s.soft as *const SoftSigner as *mut c_void,
        scheme,
        message,
        message_len,
        signature,
        signature_len,
    )
}

/// `mqtt_disconnect` on another thread while `mqtt_connect`'s signer
/// blocks: it waits for that connect (its Blocks says so), then
/// disconnects what it connected; the connect itself is not failed.
#[test]
fn mqtt_disconnect_during_a_connect_whose_signer_blocks_waits_then_disconnects() {
    let rig = rig();
    let files = rig.ca.client("signer-disc", KeyKind::EcdsaP256);
    let (entered_tx, entered) = mpsc::channel();
    let (open, open_rx) = mpsc::channel();
    let s: &'static Entered = Box::leak(Box::new(Entered {
        soft: SoftSigner::new(&files.key),
        entered: Mutex::new(entered_tx),
        open: Mutex::new(open_rx),
    }));
    let chain = std::fs::read(&files.cert).unwrap();
    let o = signer_options(
        &rig,
        &chain,
        MQTT_TLS_KEY_ECDSA_P256,
        Some(entered_cb),
        s as *const Entered as *mut c_void,
    );
    let c = mqtt_client_new(o);
    let connected = connect_on_a_thread(c, &rig.url);
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    let c_addr = c as usize;
    let (dtx, disconnected) = mpsc::channel();
    std::thread::spawn(move || {
        let rc = mqtt_disconnect(c_addr as *mut mqtt_client, 0, std::ptr::null());
        let _ = dtx.send((rc, last_error()));
    });
    // Still waiting while the signer blocks (a bounded look for an
    // absence: 300 ms).
    let early = disconnected.recv_timeout(Duration::from_millis(300));
    assert!(early.is_err(), "returned while the connect ran: {early:?}");
    open.send(()).unwrap();
    let (rc, text) = connected.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(rc, MQTT5C_OK, "connect: {text}");
    let (rc, text) = disconnected.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(rc, MQTT5C_OK, "disconnect: {text}");
    assert!(!mqtt_is_connected(c));
    mqtt_client_free(c);
    mqtt_options_free(o);
}
