//! Several servers, redirection, and the pre-connect callback: where a
//! connection attempt goes and with what credentials (see
//! `client::attempt` and `client::redirect`).

use super::error::{set_last_error, MQTT_ERR_INVALID_ARGUMENT, MQTT_OK};
use super::options::mqtt_options;
use crate::transport::BrokerUrl;
use std::ffi::c_char;
use std::os::raw::{c_int, c_uint};

/// Adds a further server, tried after the URL given to `mqtt_connect`
/// and the servers added before it. `url` takes every form `mqtt_connect`
/// accepts (each server its own transport; the TLS settings of the
/// options apply to each TLS one). Adding a URL twice, or the one given
/// to `mqtt_connect`, changes nothing: each server is tried once a round.
///
/// `mqtt_connect` tries the URL it is given, then, if that attempt fails,
/// these servers in turn, each within the connect timeout, and returns
/// the first success or the last failure (each failure is logged with env
/// `MQTT5C_LOG`). With automatic reconnection
/// (`mqtt_options_set_auto_reconnect`) every reconnection makes rounds: a round tries each server
/// once, first the one the client was last connected to, then the URL
/// given to `mqtt_connect`, then these in the order added; the delay is
/// applied per round (waited before it, doubled after each failed round);
/// `MQTT_EVENT_RECONNECTING` fires before each attempt, numbered on
/// across the rounds.
///
/// Sessions: a session lives on one broker (or one cluster sharing
/// sessions). A reconnection goes back to the server of the last
/// connection first, so that a session with a Session Expiry Interval is
/// resumed there; a failover to another broker usually finds no session
/// (CONNACK Session Present 0): the client then publishes the
/// unacknowledged QoS 1/2 messages afresh and subscribes again
/// (`mqtt_options_set_resubscribe`), as after any lost session.
///
/// Ownership: `url` is copied. Returns: `MQTT_OK` or
/// `MQTT_ERR_INVALID_ARGUMENT` (NULL opts or url; a malformed URL or an
/// unknown scheme, with the reason in `mqtt_last_error()`; the options
/// are then unchanged). Blocks: no. Threads: any, not concurrently with
/// other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_add_server(opts: *mut mqtt_options, url: *const c_char) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let url = try_str!(url, "url");
        match BrokerUrl::parse(url) {
            Ok(u) => {
                if !opts.inner.servers.contains(&u) {
                    opts.inner.servers.push(u);
                }
                MQTT_OK
            }
            Err(e) => {
                set_last_error(format!("mqtt_options_add_server: {e}"));
                MQTT_ERR_INVALID_ARGUMENT
            }
        }
    })
}

/// Follows server redirections, at most `max_hops` in a row; 0 (the
/// default) turns them off. A broker may refuse a connection with CONNACK
/// 0x9C (Use another server) or 0x9D (Server moved), or end one with
/// DISCONNECT 0x9C / 0x9D, and name another server in a Server Reference
/// property (MQTT v5 4.11; the spec leaves its format open). Accepted
/// references: "host", "host:port", "[v6addr]:port" (same transport as
/// the connection sent away, same WebSocket path, the scheme's default
/// port when none is given), a URL in the forms `mqtt_connect` takes, or
/// a space-separated list of these (the first is used).
///
/// Never to a weaker transport: the transport stays the same (mqtts stays
/// mqtts, wss stays wss) or gains TLS (mqtt to mqtts, ws to wss); a
/// reference to anything else is refused, as is any from a unix://
/// connection. A TLS connection to the new server verifies its
/// certificate against the new host's name (a server name set with
/// `mqtt_options_set_tls_server_name`, if any, is for the configured
/// servers only). The credentials and everything else of the options go
/// to the new server.
///
/// A CONNACK redirection is followed within the same attempt (the
/// `mqtt_connect` call, or one reconnect attempt), each hop within the
/// connect timeout. A DISCONNECT redirection needs automatic
/// reconnection: the reconnection goes to the new server first (a hop),
/// then, if that fails, to the configured servers as usual. The hop
/// count starts again after each successful connection. A redirection
/// not followed (off, more than `max_hops`, a weaker transport, a
/// malformed reference) is logged (env `MQTT5C_LOG`); for a CONNACK,
/// `mqtt_connect` returns the refusal's reason code (0x9C or 0x9D) and
/// `mqtt_last_error()` says where the broker sent the client and why it
/// did not go. See the README on why to be careful with redirects.
///
/// Returns: `MQTT_OK` or `MQTT_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no. Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_follow_redirects(
    opts: *mut mqtt_options,
    max_hops: c_uint,
) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.follow_redirects = max_hops;
        MQTT_OK
    })
}
