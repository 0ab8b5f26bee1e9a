"""Connection settings: ``Options`` owns a C ``mqtt_options``.

Each ``set_*`` method is one C setter (``mqtt_options_set_*``, same name,
same meaning; the header's comments are the reference), raises on failure
and returns the options, so calls chain. ``Options(**settings)`` calls
``set_<name>(value)`` (or ``add_<name>``) for each keyword (a tuple value is spread over the
arguments: ``Options(auto_reconnect=(100, 5000))``).
"""

import ctypes
import itertools
import logging

from . import _lib
from ._lib import lib
from .constants import QoS, QueuePolicy
from .errors import BadStateError, MqttError, check, cstr
from .properties import _as_bytes, _c_properties

log = logging.getLogger("mqtt5c")


def _opt_str(value, what="value"):
    return None if value is None else cstr(value, what)


# Signers of set_tls_client_signer, by the key C gets as user_data. Never
# removed: the library keeps calling a signer while any client made from
# the options lives, and nothing tells when the last one is freed.
_signer_keys = itertools.count(1)
_signers = {}


def _sign(user_data, scheme, message, message_len, signature, signature_len):
    fn = _signers.get(user_data or 0)
    if fn is None:
        return -1
    try:
        sig = _as_bytes(fn(scheme, ctypes.string_at(message, message_len)), "signature")
    except Exception:
        log.exception("mqtt5c: the TLS signer failed (the handshake fails)")
        return -1
    room = signature_len[0]
    if len(sig) > room:
        log.error("mqtt5c: the TLS signer's signature is %d bytes, room for %d", len(sig), room)
        return -1
    ctypes.memmove(signature, sig, len(sig))
    signature_len[0] = len(sig)
    return 0


_SIGN_THUNK = _lib.TLS_SIGN_CB(_sign)  # made once, never freed (see client.py)


class Options:
    """Connection settings, copied by ``Client(options)``: the options may
    be changed or closed afterwards without affecting the client.

    A context manager: ``with Options(client_id="a") as opts:`` frees the C
    object at the end (``close()``; also done when garbage-collected).
    Not thread-safe: use one from one thread at a time.
    """

    def __init__(self, **settings):
        self._handle = lib.mqtt_options_new()
        self._owned = True
        self._persistence = False
        if not self._handle:
            raise MqttError(-8, "mqtt_options_new returned NULL", "Options")
        try:
            for name, value in settings.items():
                setter = getattr(self, name if name.startswith("add_") else "set_" + name, None)
                if setter is None:
                    raise TypeError(f"Options() got an unknown setting {name!r}")
                if isinstance(value, tuple):
                    setter(*value)
                else:
                    setter(value)
        except BaseException:
            self.close()
            raise

    @classmethod
    def _borrow(cls, handle):
        """Wraps options the library owns (the pre-connect callback's)."""
        opts = cls.__new__(cls)
        opts._handle = handle
        opts._owned = False
        opts._persistence = False
        return opts

    def close(self):
        """Frees the C options (idempotent)."""
        handle, self._handle = self._handle, None
        if handle and self._owned:
            lib.mqtt_options_free(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def _h(self):
        if not self._handle:
            raise BadStateError(-12, "the options are closed", "Options")
        return self._handle

    def _set(self, fn, name, *args):
        check(fn(self._h, *args), f"Options.set_{name}")
        return self

    # Identity and session
    def set_client_id(self, client_id):
        return self._set(lib.mqtt_options_set_client_id, "client_id", _opt_str(client_id, "client id"))

    def set_keep_alive(self, seconds):
        return self._set(lib.mqtt_options_set_keep_alive, "keep_alive", seconds)

    def set_clean_start(self, on):
        return self._set(lib.mqtt_options_set_clean_start, "clean_start", bool(on))

    def set_session_expiry(self, seconds):
        return self._set(lib.mqtt_options_set_session_expiry, "session_expiry", seconds)

    def set_credentials(self, username, password=None):
        """``username`` None clears both; ``password`` is bytes or str."""
        pw = None if password is None else _as_bytes(password, "password")
        return self._set(
            lib.mqtt_options_set_credentials,
            "credentials",
            _opt_str(username, "user name"),
            pw,
            0 if pw is None else len(pw),
        )

    def set_will(self, topic, payload=b"", qos=QoS.AT_MOST_ONCE, retain=False, properties=None):
        """The will message; ``topic`` None removes it. ``properties``:
        will properties (will_delay_interval, message_expiry_interval, ...)."""
        data = _as_bytes(payload, "payload")
        with _c_properties(properties) as props:
            return self._set(
                lib.mqtt_options_set_will,
                "will",
                _opt_str(topic, "will topic"),
                data,
                len(data),
                int(qos),
                bool(retain),
                props,
            )

    def set_connect_properties(self, properties):
        """Extra CONNECT properties (receive_maximum, request_response_information,
        user_properties, ...); None clears them."""
        with _c_properties(properties) as props:
            return self._set(lib.mqtt_options_set_connect_properties, "connect_properties", props)

    def set_auth(self, method, data=None):
        """Enhanced authentication: method (e.g. "SCRAM-SHA-256") and initial data."""
        raw = None if data is None else _as_bytes(data, "data")
        return self._set(
            lib.mqtt_options_set_auth, "auth", _opt_str(method, "authentication method"), raw, 0 if raw is None else len(raw)
        )

    def set_protocol_version(self, version):
        """``ProtocolVersion.V5`` (the default), ``V311`` or ``AUTO``. On a
        3.1.1 connection what only v5 has (properties, subscription options
        beyond QoS, request, ...) raises InvalidArgumentError naming it."""
        return self._set(lib.mqtt_options_set_protocol_version, "protocol_version", int(version))

    def set_manual_ack(self, on):
        return self._set(lib.mqtt_options_set_manual_ack, "manual_ack", bool(on))

    # Timeouts, reconnection, queues
    def set_connect_timeout(self, ms):
        return self._set(lib.mqtt_options_set_connect_timeout, "connect_timeout", ms)

    def set_operation_timeout(self, ms):
        return self._set(lib.mqtt_options_set_operation_timeout, "operation_timeout", ms)

    def set_auto_reconnect(self, min_delay_ms, max_delay_ms):
        """Automatic reconnection; ``min_delay_ms`` 0 turns it off."""
        return self._set(lib.mqtt_options_set_auto_reconnect, "auto_reconnect", min_delay_ms, max_delay_ms)

    def set_connect_retry(self, on):
        return self._set(lib.mqtt_options_set_connect_retry, "connect_retry", bool(on))

    def add_server(self, url):
        """A further server, tried after the URL given to connect()."""
        return self._set(lib.mqtt_options_add_server, "add_server", cstr(url, "url"))

    def set_follow_redirects(self, max_hops):
        return self._set(lib.mqtt_options_set_follow_redirects, "follow_redirects", max_hops)

    def set_offline_queue(self, max_messages, max_bytes, policy=QueuePolicy.FAIL_NEW):
        return self._set(
            lib.mqtt_options_set_offline_queue, "offline_queue", max_messages, max_bytes, int(policy)
        )

    def set_offline_queue_qos0(self, on):
        return self._set(lib.mqtt_options_set_offline_queue_qos0, "offline_queue_qos0", bool(on))

    def set_resubscribe(self, on):
        return self._set(lib.mqtt_options_set_resubscribe, "resubscribe", bool(on))

    def set_delivery_queue(self, max_messages, max_bytes):
        return self._set(lib.mqtt_options_set_delivery_queue, "delivery_queue", max_messages, max_bytes)

    def set_delivery_queue_limit(self, messages):
        return self._set(lib.mqtt_options_set_delivery_queue_limit, "delivery_queue_limit", messages)

    def set_persistence_dir(self, path):
        """Keep QoS 1/2 session state on disk in ``path`` (None: off); needs a
        client id. ``Client()`` raises ``PersistenceError`` when the store
        cannot be opened (in use by another client, unreadable)."""
        self._set(
            lib.mqtt_options_set_persistence_dir, "persistence_dir", _opt_str(path, "path")
        )
        self._persistence = bool(path)
        return self

    # Flow control and limits
    def set_receive_maximum(self, count):
        return self._set(lib.mqtt_options_set_receive_maximum, "receive_maximum", count)

    def set_receive_maximum_strict(self, on):
        return self._set(lib.mqtt_options_set_receive_maximum_strict, "receive_maximum_strict", bool(on))

    def set_maximum_packet_size(self, size):
        return self._set(lib.mqtt_options_set_maximum_packet_size, "maximum_packet_size", size)

    def set_topic_alias_maximum(self, count):
        return self._set(lib.mqtt_options_set_topic_alias_maximum, "topic_alias_maximum", count)

    def set_outgoing_topic_aliases(self, count):
        return self._set(lib.mqtt_options_set_outgoing_topic_aliases, "outgoing_topic_aliases", count)

    def set_tcp_nodelay(self, on):
        return self._set(lib.mqtt_options_set_tcp_nodelay, "tcp_nodelay", bool(on))

    def set_tcp_quickack(self, on):
        return self._set(lib.mqtt_options_set_tcp_quickack, "tcp_quickack", bool(on))

    # TLS and WebSocket
    def set_tls_ca_file(self, path):
        """Trust the CA certificates in this PEM file (None: the system store)."""
        return self._set(lib.mqtt_options_set_tls_ca_file, "tls_ca_file", _opt_str(path, "path"))

    def set_tls_client_cert(self, cert_path, key_path):
        """Client certificate chain and private key (PEM) for mutual TLS; both None remove it."""
        return self._set(
            lib.mqtt_options_set_tls_client_cert,
            "tls_client_cert",
            _opt_str(cert_path, "certificate path"),
            _opt_str(key_path, "key path"),
        )

    def set_tls_ca_pem(self, pem):
        """Trust the CA certificates in ``pem`` (PEM text, bytes or str)
        instead of the system store; None goes back to the system store."""
        data = None if pem is None else _as_bytes(pem, "pem")
        return self._set(lib.mqtt_options_set_tls_ca_pem, "tls_ca_pem", data, 0 if data is None else len(data))

    def set_tls_client_cert_pem(self, cert_pem, key_pem):
        """Client certificate chain and private key from PEM buffers (bytes
        or str) for mutual TLS; both None remove it."""
        cert = None if cert_pem is None else _as_bytes(cert_pem, "cert_pem")
        key = None if key_pem is None else _as_bytes(key_pem, "key_pem")
        return self._set(
            lib.mqtt_options_set_tls_client_cert_pem,
            "tls_client_cert_pem",
            cert,
            0 if cert is None else len(cert),
            key,
            0 if key is None else len(key),
        )

    def set_tls_client_signer(self, cert_chain_pem, key_type, sign):
        """A client certificate whose private key stays outside the library
        (TPM, PKCS#11, secure element): ``sign(scheme: int, message: bytes)
        -> bytes`` signs ``message`` (not a hash) with the TLS
        SignatureScheme ``scheme`` during each handshake that asks for a
        client certificate; raising fails the handshake (TLSError).
        ``key_type`` is a ``TlsKeyType``. It runs on the thread that runs
        the handshake (the one inside ``connect``, or a library thread when
        reconnecting), possibly on several at once for clients made from
        these options; it must not call the client it signs for.

        ``sign`` is kept alive for as long as the process lives: the
        library may call it from any client made from these options, and
        never says when the last one is gone."""
        chain = _as_bytes(cert_chain_pem, "cert_chain_pem")
        key = next(_signer_keys)
        _signers[key] = sign
        return self._set(
            lib.mqtt_options_set_tls_client_signer, "tls_client_signer", chain, len(chain), int(key_type), _SIGN_THUNK, key
        )

    def set_proxy(self, url):
        """Connect through a proxy: "http://[user:pass@]host:port" (HTTP
        CONNECT), "socks5://..." or "socks5h://..."; None: no proxy."""
        return self._set(lib.mqtt_options_set_proxy, "proxy", _opt_str(url, "proxy URL"))

    def set_proxy_from_env(self, on):
        """Take the proxy from HTTPS_PROXY / ALL_PROXY / NO_PROXY at each
        connection, unless one is set with ``set_proxy``."""
        return self._set(lib.mqtt_options_set_proxy_from_env, "proxy_from_env", bool(on))

    def set_tls_server_name(self, name):
        return self._set(lib.mqtt_options_set_tls_server_name, "tls_server_name", _opt_str(name, "server name"))

    def set_tls_alpn(self, protocols):
        """ALPN protocols offered, most preferred first (empty: none)."""
        names = [cstr(p, "ALPN protocol") for p in protocols]
        array = (ctypes.c_char_p * len(names))(*names) if names else None
        return self._set(lib.mqtt_options_set_tls_alpn, "tls_alpn", array, len(names))

    def set_tls_insecure_skip_verify(self, skip):
        """INSECURE, for test rigs: no certificate or host name check."""
        return self._set(lib.mqtt_options_set_tls_insecure_skip_verify, "tls_insecure_skip_verify", bool(skip))

    def add_ws_header(self, name, value):
        """An HTTP header for the WebSocket upgrade request (ws://, wss://)."""
        return self._set(lib.mqtt_options_add_ws_header, "ws_header", cstr(name, "header name"), cstr(value, "header value"))

    def set_tls(self, ca_file=None, client_cert=None, client_key=None, server_name=None, alpn=None,
                insecure_skip_verify=None, ca_pem=None):
        """Several TLS settings at once; None leaves a setting as it is."""
        if ca_file is not None:
            self.set_tls_ca_file(ca_file)
        if ca_pem is not None:
            self.set_tls_ca_pem(ca_pem)
        if client_cert is not None or client_key is not None:
            self.set_tls_client_cert(client_cert, client_key)
        if server_name is not None:
            self.set_tls_server_name(server_name)
        if alpn is not None:
            self.set_tls_alpn(alpn)
        if insecure_skip_verify is not None:
            self.set_tls_insecure_skip_verify(insecure_skip_verify)
        return self
