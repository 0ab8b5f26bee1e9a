//! Server properties through the C API, against a scripted broker, for what
//! mosquitto 2.0 cannot show:
//! a server DISCONNECT with Reason String and Server Reference, a server
//! without Subscription Identifiers (per-subscription callbacks then route
//! by topic), and a CONNACK with Response Information (mqtt_request derives
//! its response topic from it). The C functions are called from Rust.

mod scripted;

use bytes::Bytes;
use mqtt5c::ffi::*;
use mqtt5c::packet::{Disconnect, Packet, Property, PropertyId, QoS, ReasonCode};
use scripted::{accept_connected, props, publish, resp, s, Script};
use std::ffi::{c_void, CStr, CString};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The script's URL as a C string.
fn c_url(script: &Script) -> CString {
    CString::new(script.url()).unwrap()
}

fn last_error() -> String {
    // SAFETY: mqtt_last_error never returns NULL.
    unsafe { CStr::from_ptr(mqtt_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn new_client(id: &str) -> *mut mqtt_client {
    let o = mqtt_options_new();
    let id = CString::new(id).unwrap();
    assert_eq!(mqtt_options_set_client_id(o, id.as_ptr()), MQTT5C_OK);
    assert_eq!(mqtt_options_set_operation_timeout(o, 10_000), MQTT5C_OK);
    let c = mqtt_client_new(o);
    mqtt_options_free(o);
    assert!(!c.is_null());
    c
}

fn prop_string(p: *const mqtt_properties, id: i32) -> Option<String> {
    let s = mqtt_properties_get_string(p, id);
    // SAFETY: NULL or a NUL-terminated string owned by `p`.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
}

#[test]
fn server_disconnect_reason_string_and_server_reference() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        p.expect_subscribe();
        p.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::UseAnotherServer,
            properties: props(vec![
                Property::ReasonString(s("moving to another server")),
                Property::ServerReference(s("other.example:1883")),
            ]),
        }));
    });
    let url = c_url(&script);
    let c = new_client("ffi-disc");
    assert!(mqtt_disconnect_properties(c).is_null());
    assert_eq!(mqtt_connect(c, url.as_ptr()), MQTT5C_OK);
    let f = CString::new("x/#").unwrap();
    assert_eq!(
        mqtt_subscribe(c, f.as_ptr(), 1, std::ptr::null()),
        MQTT5C_ERR_CONNECTION_LOST
    );
    let e = last_error();
    assert!(
        e.to_lowercase().contains("use another server") && e.contains("moving to another server"),
        "{e}"
    );
    assert!(e.contains("other.example:1883"), "{e}");
    let d = mqtt_disconnect_properties(c);
    assert!(!d.is_null(), "{}", last_error());
    assert_eq!(
        prop_string(d, MQTT5C_PROP_REASON_STRING).as_deref(),
        Some("moving to another server")
    );
    assert_eq!(
        prop_string(d, MQTT5C_PROP_SERVER_REFERENCE).as_deref(),
        Some("other.example:1883")
    );
    mqtt_properties_free(d);
    mqtt_client_free(c);
    script.finish(WAIT).unwrap();
}

static ROUTED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ROUTED_CV: Condvar = Condvar::new();

unsafe extern "C" fn on_msg(ud: *mut c_void, m: *const mqtt_message) {
    let who = ud as usize as u8 as char;
    let t = CStr::from_ptr(mqtt_message_topic(m)).to_string_lossy();
    ROUTED.lock().unwrap().push(format!("{who} {t}"));
    ROUTED_CV.notify_all();
}

#[test]
fn routes_by_topic_without_subscription_ids_and_response_topic_from_response_information() {
    let script = Script::start(|l| {
        let mut p = accept_connected(
            &l,
            vec![
                Property::SubscriptionIdentifierAvailable(0),
                Property::ResponseInformation(s("resp/base/")),
            ],
        );
        // mqtt_subscribe_cb: no identifier may be sent to this server.
        let sub = p.answer_subscribe(vec![ReasonCode::GrantedQoS1]);
        assert!(sub
            .properties
            .get(PropertyId::SubscriptionIdentifier)
            .is_none());
        assert_eq!(sub.filters[0].filter.as_str(), "a/+");
        let q0 = QoS::AtMostOnce;
        p.send(publish("a/x", q0, None, vec![], b"1"));
        p.send(publish("b/y", q0, None, vec![], b"2"));
        p.send(publish("a/z", q0, None, vec![], b"3"));
        // mqtt_request: response topic under the Response Information.
        let sub = p.answer_subscribe(vec![ReasonCode::GrantedQoS2]);
        assert_eq!(
            sub.filters[0].filter.as_str(),
            "resp/base/ffi-route/mqtt5c-responses"
        );
        let req = p.expect_publish();
        let rt = req
            .properties
            .get_str(PropertyId::ResponseTopic)
            .unwrap()
            .clone();
        let cd = req
            .properties
            .get_binary(PropertyId::CorrelationData)
            .unwrap()
            .clone();
        p.send(Packet::PubAck(resp(req.packet_id.unwrap())));
        // A stray response with other correlation data goes to the callback.
        let stray = vec![Property::CorrelationData(Bytes::from_static(b"not-ours"))];
        p.send(publish(rt.as_str(), q0, None, stray, b"stray"));
        let answer = vec![Property::CorrelationData(cd)];
        p.send(publish(rt.as_str(), q0, None, answer, b"answer"));
        // Keep the connection until the client leaves.
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let url = c_url(&script);
    let c = new_client("ffi-route");
    assert_eq!(
        mqtt_set_message_callback(c, Some(on_msg), b'D' as usize as *mut c_void),
        MQTT5C_OK
    );
    assert_eq!(mqtt_connect(c, url.as_ptr()), MQTT5C_OK);
    let f = CString::new("a/+").unwrap();
    assert_eq!(
        mqtt_subscribe_cb(
            c,
            f.as_ptr(),
            1,
            std::ptr::null(),
            Some(on_msg),
            b'A' as usize as *mut c_void
        ),
        1
    );
    let topic = CString::new("req/t").unwrap();
    let mut resp: *mut mqtt_message = std::ptr::null_mut();
    let rc = mqtt_request(
        c,
        topic.as_ptr(),
        b"q".as_ptr() as *const c_void,
        1,
        1,
        std::ptr::null(),
        10_000,
        &mut resp,
    );
    assert_eq!(rc, MQTT5C_OK, "{}", last_error());
    let mut len = 0usize;
    let p = mqtt_message_payload(resp, &mut len);
    // SAFETY: `len` bytes at `p`, owned by `resp`.
    assert_eq!(
        unsafe { std::slice::from_raw_parts(p as *const u8, len) },
        b"answer"
    );
    mqtt_message_free(resp);
    let got = {
        let g = ROUTED.lock().unwrap();
        let (g, _) = ROUTED_CV
            .wait_timeout_while(g, WAIT, |v| v.len() < 4)
            .unwrap();
        g.clone()
    };
    assert_eq!(mqtt_disconnect(c, 0, std::ptr::null()), MQTT5C_OK);
    mqtt_client_free(c);
    script.finish(WAIT).unwrap();
    assert_eq!(
        got,
        vec![
            "A a/x".to_string(),
            "D b/y".into(),
            "A a/z".into(),
            "D resp/base/ffi-route/mqtt5c-responses".into()
        ]
    );
}
