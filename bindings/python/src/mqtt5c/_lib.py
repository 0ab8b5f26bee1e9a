"""Finding and loading libmqtt5c, and the ctypes signature of each C function.

Where the library is looked for, in order (README.md, "Finding the library"):

1. ``$MQTT5C_LIBRARY``: a path to the library file (or a name dlopen finds);
2. ``ctypes.util.find_library("mqtt5c")``: the dynamic linker's cache
   (``ldconfig``), so an installed ``libmqtt5c.so.0`` after ``make install``
   and ``ldconfig``;
3. ``pkg-config --variable=libdir mqtt5c``: an install into a prefix the
   linker does not search, with ``PKG_CONFIG_PATH`` pointing at it;
4. plain ``libmqtt5c.so.0`` / ``libmqtt5c.so``: ``LD_LIBRARY_PATH``.

The signatures below mirror include/mqtt5c.h one for one; a function the
loaded library lacks (an older library) fails the import with its name.
"""

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from ctypes import (
    CFUNCTYPE,
    POINTER,
    c_bool,
    c_char_p,
    c_int,
    c_size_t,
    c_uint,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)

ENV_VAR = "MQTT5C_LIBRARY"
SONAMES = ("libmqtt5c.so.0", "libmqtt5c.so")

# Opaque handles are plain void pointers; Python never looks inside.
client_p = c_void_p
options_p = c_void_p
props_p = c_void_p
message_p = c_void_p
auth_response_p = c_void_p

# Callback types, as the header's typedefs. CFUNCTYPE thunks take the GIL
# when the library calls them from its own threads.
MESSAGE_CB = CFUNCTYPE(None, c_void_p, message_p)
CONNECTION_CB = CFUNCTYPE(None, c_void_p, c_int, c_int)
PUBLISH_CB = CFUNCTYPE(None, c_void_p, c_int, props_p)
PRE_CONNECT_CB = CFUNCTYPE(c_int, c_void_p, c_char_p, c_uint, options_p)
AUTH_CB = CFUNCTYPE(c_int, c_void_p, c_int, c_char_p, c_void_p, c_size_t, auth_response_p)
LOG_CB = CFUNCTYPE(None, c_void_p, c_int, c_char_p)
FREE_CB = CFUNCTYPE(None, c_void_p)
TLS_SIGN_CB = CFUNCTYPE(c_int, c_void_p, c_uint16, c_void_p, c_size_t, c_void_p, POINTER(c_size_t))



class Stats(ctypes.Structure):
    """``mqtt5c_stats``, field for field (every field a uint64_t; new ones
    only ever appended, so this layout stays a valid prefix)."""

    _fields_ = [
        ("size", c_uint64),
        ("messages_sent", c_uint64 * 3),
        ("payload_bytes_sent", c_uint64 * 3),
        ("messages_received", c_uint64 * 3),
        ("payload_bytes_received", c_uint64 * 3),
    ] + [
        (name, c_uint64)
        for name in (
            "reconnects",
            "reconnect_attempts",
            "outbound_in_flight",
            "inbound_in_flight",
            "offline_queue_length",
            "queued",
            "queue_dropped",
            "queue_expired",
            "qos0_dropped",
            "delivery_queue_length",
            "delivery_queue_peak",
            "delivery_queue_peak_bytes",
            "receive_maximum_exceeded",
            "inbound_inflight_peak",
            "resubscribe_failed",
            "writes",
            "log_dropped",
        )
    ]


_int = c_int
_SIGNATURES = {
    # version, errors, runtime
    "mqtt_version": (c_char_p, []),
    "mqtt_version_number": (c_uint32, []),
    "mqtt_strerror": (c_char_p, [_int]),
    "mqtt_succeeded": (c_bool, [_int]),
    "mqtt_last_error": (c_char_p, []),
    "mqtt_global_init": (_int, [c_uint]),
    "mqtt_global_cleanup": (_int, []),
    # options
    "mqtt_options_new": (options_p, []),
    "mqtt_options_free": (None, [options_p]),
    "mqtt_options_set_client_id": (_int, [options_p, c_char_p]),
    "mqtt_options_set_keep_alive": (_int, [options_p, c_uint16]),
    "mqtt_options_set_clean_start": (_int, [options_p, c_bool]),
    "mqtt_options_set_session_expiry": (_int, [options_p, c_uint32]),
    "mqtt_options_set_credentials": (_int, [options_p, c_char_p, c_void_p, c_size_t]),
    "mqtt_options_set_will": (
        _int,
        [options_p, c_char_p, c_void_p, c_size_t, _int, c_bool, props_p],
    ),
    "mqtt_options_set_connect_timeout": (_int, [options_p, c_uint32]),
    "mqtt_options_set_operation_timeout": (_int, [options_p, c_uint32]),
    "mqtt_options_set_auto_reconnect": (_int, [options_p, c_uint32, c_uint32]),
    "mqtt_options_set_connect_retry": (_int, [options_p, c_bool]),
    "mqtt_options_set_offline_queue": (_int, [options_p, c_size_t, c_size_t, _int]),
    "mqtt_options_set_offline_queue_qos0": (_int, [options_p, c_bool]),
    "mqtt_options_set_resubscribe": (_int, [options_p, c_bool]),
    "mqtt_options_set_tcp_nodelay": (_int, [options_p, c_bool]),
    "mqtt_options_set_tcp_quickack": (_int, [options_p, c_bool]),
    "mqtt_options_set_delivery_queue": (_int, [options_p, c_size_t, c_size_t]),
    "mqtt_options_set_delivery_queue_limit": (_int, [options_p, c_size_t]),
    "mqtt_options_set_persistence_dir": (_int, [options_p, c_char_p]),
    "mqtt_options_set_receive_maximum": (_int, [options_p, c_uint16]),
    "mqtt_options_set_receive_maximum_strict": (_int, [options_p, c_bool]),
    "mqtt_options_set_maximum_packet_size": (_int, [options_p, c_uint32]),
    "mqtt_options_set_topic_alias_maximum": (_int, [options_p, c_uint16]),
    "mqtt_options_set_outgoing_topic_aliases": (_int, [options_p, c_uint16]),
    "mqtt_options_set_follow_redirects": (_int, [options_p, c_uint]),
    "mqtt_options_add_server": (_int, [options_p, c_char_p]),
    "mqtt_options_set_manual_ack": (_int, [options_p, c_bool]),
    "mqtt_options_set_auth": (_int, [options_p, c_char_p, c_void_p, c_size_t]),
    "mqtt_options_set_connect_properties": (_int, [options_p, props_p]),
    "mqtt_options_set_tls_ca_file": (_int, [options_p, c_char_p]),
    "mqtt_options_set_tls_client_cert": (_int, [options_p, c_char_p, c_char_p]),
    "mqtt_options_set_tls_server_name": (_int, [options_p, c_char_p]),
    "mqtt_options_set_tls_ca_pem": (_int, [options_p, c_void_p, c_size_t]),
    "mqtt_options_set_tls_client_cert_pem": (_int, [options_p, c_void_p, c_size_t, c_void_p, c_size_t]),
    "mqtt_options_set_tls_client_signer": (
        _int,
        [options_p, c_void_p, c_size_t, _int, TLS_SIGN_CB, c_void_p],
    ),
    "mqtt_options_set_protocol_version": (_int, [options_p, _int]),
    "mqtt_options_set_proxy": (_int, [options_p, c_char_p]),
    "mqtt_options_set_proxy_from_env": (_int, [options_p, c_bool]),
    "mqtt_options_set_tls_alpn": (_int, [options_p, POINTER(c_char_p), c_size_t]),
    "mqtt_options_set_tls_insecure_skip_verify": (_int, [options_p, c_bool]),
    "mqtt_options_add_ws_header": (_int, [options_p, c_char_p, c_char_p]),
    # client
    "mqtt_client_new": (client_p, [options_p]),
    "mqtt_client_free": (None, [client_p]),
    "mqtt_set_message_callback": (_int, [client_p, MESSAGE_CB, c_void_p]),
    "mqtt_set_connection_callback": (_int, [client_p, CONNECTION_CB, c_void_p]),
    "mqtt_set_pre_connect_callback": (_int, [client_p, PRE_CONNECT_CB, c_void_p]),
    "mqtt_set_auth_callback": (_int, [client_p, AUTH_CB, c_void_p]),
    "mqtt_auth_response_set_data": (_int, [auth_response_p, c_void_p, c_size_t]),
    "mqtt_connect": (_int, [client_p, c_char_p]),
    "mqtt_reauthenticate": (_int, [client_p, c_void_p, c_size_t, props_p]),
    "mqtt_disconnect": (_int, [client_p, _int, props_p]),
    "mqtt_is_connected": (c_bool, [client_p]),
    "mqtt_client_protocol_version": (_int, [client_p]),
    "mqtt_session_present": (c_bool, [client_p]),
    "mqtt_client_get_id": (_int, [client_p, c_char_p, c_size_t]),
    "mqtt_client_get_stat": (_int, [client_p, _int, POINTER(c_uint64)]),
    "mqtt_client_get_stats": (_int, [client_p, POINTER(Stats), c_size_t]),
    "mqtt_set_log_callback": (_int, [client_p, LOG_CB, c_void_p, FREE_CB, _int]),
    "mqtt_connack_properties": (props_p, [client_p]),
    "mqtt_disconnect_properties": (props_p, [client_p]),
    # publish, subscribe, request, ack
    "mqtt_publish": (_int, [client_p, c_char_p, c_void_p, c_size_t, _int, c_bool, props_p]),
    "mqtt_publish_async": (
        _int,
        [client_p, c_char_p, c_void_p, c_size_t, _int, c_bool, props_p, PUBLISH_CB, c_void_p],
    ),
    "mqtt_subscribe": (_int, [client_p, c_char_p, _int, props_p]),
    "mqtt_subscribe_cb": (_int, [client_p, c_char_p, _int, props_p, MESSAGE_CB, c_void_p]),
    "mqtt_subscribe_many": (
        _int,
        [client_p, POINTER(c_char_p), POINTER(c_int), c_size_t, props_p, POINTER(c_int)],
    ),
    "mqtt_unsubscribe": (_int, [client_p, c_char_p, props_p]),
    "mqtt_unsubscribe_many": (
        _int,
        [client_p, POINTER(c_char_p), c_size_t, props_p, POINTER(c_int)],
    ),
    "mqtt_request": (
        _int,
        [client_p, c_char_p, c_void_p, c_size_t, _int, props_p, c_uint32, POINTER(message_p)],
    ),
    "mqtt_ack": (_int, [client_p, c_uint64, _int]),
    # messages
    "mqtt_message_topic": (c_char_p, [message_p]),
    "mqtt_message_payload": (c_void_p, [message_p, POINTER(c_size_t)]),
    "mqtt_message_qos": (_int, [message_p]),
    "mqtt_message_retain": (c_bool, [message_p]),
    "mqtt_message_dup": (c_bool, [message_p]),
    "mqtt_message_properties": (props_p, [message_p]),
    "mqtt_message_ack_id": (c_uint64, [message_p]),
    "mqtt_message_copy": (message_p, [message_p]),
    "mqtt_message_free": (None, [message_p]),
    # properties
    "mqtt_properties_new": (props_p, []),
    "mqtt_properties_free": (None, [props_p]),
    "mqtt_properties_copy": (props_p, [props_p]),
    "mqtt_properties_add_user": (_int, [props_p, c_char_p, c_char_p]),
    "mqtt_properties_set_int": (_int, [props_p, _int, c_uint32]),
    "mqtt_properties_set_string": (_int, [props_p, _int, c_char_p]),
    "mqtt_properties_set_binary": (_int, [props_p, _int, c_void_p, c_size_t]),
    "mqtt_properties_remove": (_int, [props_p, _int]),
    "mqtt_properties_get_int": (_int, [props_p, _int, POINTER(c_uint32)]),
    "mqtt_properties_get_int_at": (_int, [props_p, _int, c_size_t, POINTER(c_uint32)]),
    "mqtt_properties_get_string_len": (c_void_p, [props_p, _int, POINTER(c_size_t)]),
    "mqtt_properties_get_binary": (c_void_p, [props_p, _int, POINTER(c_size_t)]),
    "mqtt_properties_count": (c_size_t, [props_p, _int]),
    "mqtt_properties_user_at": (
        _int,
        [props_p, c_size_t, POINTER(c_void_p), POINTER(c_void_p)],
    ),
}


def _pkg_config_libdir():
    if shutil.which("pkg-config") is None:
        return None
    try:
        out = subprocess.run(
            ["pkg-config", "--variable=libdir", "mqtt5c"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = out.stdout.strip()
    return libdir if out.returncode == 0 and libdir else None


def candidates():
    """Where the library is looked for, in order (names or paths)."""
    env = os.environ.get(ENV_VAR)
    if env:
        # An explicit choice: nothing else is tried, so a wrong path is an
        # error rather than silently another library.
        return [env]
    found = []
    name = ctypes.util.find_library("mqtt5c")
    if name:
        found.append(name)
    libdir = _pkg_config_libdir()
    if libdir:
        found.extend(os.path.join(libdir, soname) for soname in SONAMES)
    found.extend(SONAMES)
    return found


def load():
    """Loads the library and declares every function; raises ImportError."""
    errors = []
    for candidate in candidates():
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as e:
            errors.append(f"{candidate}: {e}")
            continue
        _declare(lib, candidate)
        lib.mqtt5c_path = candidate
        return lib
    raise ImportError(
        "mqtt5c: cannot load libmqtt5c; set MQTT5C_LIBRARY to the library's path "
        "(e.g. target/release/libmqtt5c.so) or install it (make install; ldconfig). "
        "Tried: " + "; ".join(errors)
    )


def _declare(lib, where):
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(
                f"mqtt5c: {where} has no function {name}: a libmqtt5c older than this binding"
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes


lib = load()
