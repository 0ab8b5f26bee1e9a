"""The client: ``Client`` owns a C ``mqtt_client``.

Callbacks and threads (README.md, "Callbacks and threads"):

- The library calls callbacks on one of its own threads (a thread of its
  runtime's blocking pool), never on the thread that called ``connect`` or
  ``publish``; the callbacks of one client run one at a time, in the order
  the broker sent the messages. ctypes takes the GIL for each call, so a
  callback holds the GIL while it runs Python code (blocking calls into
  the library release it).
- A callback may make any call on the client, blocking ones included
  (``publish`` at QoS 1 waiting for its PUBACK, ``subscribe``,
  ``request``), and may close the client.
- The C callback functions are module-level ctypes CFUNCTYPE objects (one
  per callback type), made once at import and never freed, so no
  registration can outlive its function pointer (the classic ctypes crash:
  a CFUNCTYPE object collected while C still holds its pointer). What
  reaches C as ``user_data`` is an integer key into a module-level
  table; the Python callables themselves are kept alive by the Client
  (``on_message``, ``on_connection``, routes of ``subscribe(callback=...)``,
  completions of ``publish_async``) until ``close()``, after which the
  library calls none of them.
- An exception raised by a callback is logged (logger ``mqtt5c``) and
  otherwise ignored: it cannot travel into the library's thread.
"""

import atexit
import contextlib
import ctypes
import dataclasses
import itertools
import logging
import threading
import weakref

from . import _lib
from ._lib import lib
from .constants import ErrorCode, Event, LogLevel, ProtocolVersion, QoS, Stat, reason
from .errors import BadStateError, MqttError, NotConnectedError, check, cstr, error_for
from .message import Message
from .options import Options
from .properties import Properties, _as_bytes, _c_properties, _owned_to_python

log = logging.getLogger("mqtt5c")

# Keys given to C as user_data -> what they stand for. Integers, not Python
# object addresses: a key that outlived its entry finds nothing, harmlessly.
_keys = itertools.count(1)
_clients = {}  # key -> weakref to Client
_routes = {}  # key -> (weakref to Client, callable(Message))
_completions = {}  # key -> (weakref to Client, callable(result, Properties))
_live = weakref.WeakSet()  # closed at interpreter exit, before threads stop working


def _run_user(what, fn, *args):
    """Calls ``fn(*args)``; an exception is logged: it cannot travel into
    the library's thread (ctypes would print and drop it)."""
    try:
        return fn(*args)
    except Exception:
        log.exception("mqtt5c: exception in %s callback (ignored)", what)
        return None


def _client_of(user_data):
    ref = _clients.get(user_data or 0)
    return ref() if ref is not None else None


def _status(code):
    """A callback's status as the most telling type: an ErrorCode when
    negative, a ReasonCode when it is one, else the int."""
    if code < 0:
        try:
            return ErrorCode(code)
        except ValueError:
            return code
    return reason(code)


def _on_message(user_data, message):
    client = _client_of(user_data)
    fn = client._on_message if client is not None else None
    if fn is not None:
        _run_user("message", lambda: fn(Message._from_c(message)))


def _on_route(user_data, message):
    entry = _routes.get(user_data or 0)
    client = entry[0]() if entry is not None else None  # held for the call, as by the others
    if client is not None:
        _run_user("subscription", lambda: entry[1](Message._from_c(message)))


def _on_connection(user_data, event, reason_code):
    client = _client_of(user_data)
    fn = client._on_connection if client is not None else None
    if fn is None:
        return
    if event == Event.RECONNECTING:
        detail = reason_code  # the attempt's number
    else:
        detail = _status(reason_code)
    try:
        event = Event(event)
    except ValueError:
        pass
    _run_user("connection", fn, event, detail)


def _on_publish(user_data, result, ack_props):
    entry = _completions.pop(user_data or 0, None)
    if entry is None:
        return
    client = entry[0]()
    if client is not None:
        client._pending.discard(user_data)
    _run_user("publish completion", lambda: entry[1](_status(result), Properties._from_c(ack_props)))


def _on_pre_connect(user_data, url, attempt, options):
    client = _client_of(user_data)
    fn = client._on_pre_connect if client is not None else None
    if fn is None:
        return 0
    opts = Options._borrow(options)
    try:
        go = _run_user("pre-connect", lambda: fn(url.decode("utf-8"), attempt, opts))
    finally:
        opts._handle = None  # the library's, valid only during the call
    return 1 if go is False else 0


def _on_auth(user_data, reason_code, method, data, length, response):
    client = _client_of(user_data)
    fn = client._on_auth if client is not None else None
    if fn is None:
        return 0x80
    try:
        payload = ctypes.string_at(data, length) if data else None
        answer = fn(reason(reason_code), method.decode("utf-8") if method else None, payload)
        if answer is not None:
            raw = _as_bytes(answer, "auth answer")
            if lib.mqtt_auth_response_set_data(response, raw, len(raw)) != 0:
                raise error_for(-1, "auth answer")
    except Exception as e:
        log.debug("mqtt5c: the auth callback aborted the exchange: %r", e)
        code = getattr(e, "reason_code", None)
        return int(code) if code else 0x80
    return 0


# The logger log lines go to without a callback of the application's own.
client_log = logging.getLogger("mqtt5c.client")


def _on_log(user_data, level, line):
    client = _client_of(user_data)
    fn = client._on_log if client is not None else None
    if fn is None:
        return
    try:
        level = LogLevel(level)
    except ValueError:
        pass
    _run_user("log", fn, level, line.decode("utf-8", "replace"))


# Made once, never freed: see the module docstring.
_MESSAGE_THUNK = _lib.MESSAGE_CB(_on_message)
_ROUTE_THUNK = _lib.MESSAGE_CB(_on_route)
_CONNECTION_THUNK = _lib.CONNECTION_CB(_on_connection)
_PUBLISH_THUNK = _lib.PUBLISH_CB(_on_publish)
_PRE_CONNECT_THUNK = _lib.PRE_CONNECT_CB(_on_pre_connect)
_AUTH_THUNK = _lib.AUTH_CB(_on_auth)
_LOG_THUNK = _lib.LOG_CB(_on_log)
_NULL_LOG_CB = _lib.LOG_CB()
_NULL_FREE_CB = _lib.FREE_CB()
_NULL_MESSAGE_CB = _lib.MESSAGE_CB()
_NULL_CONNECTION_CB = _lib.CONNECTION_CB()
_NULL_PRE_CONNECT_CB = _lib.PRE_CONNECT_CB()
_NULL_AUTH_CB = _lib.AUTH_CB()
_NULL_PUBLISH_CB = _lib.PUBLISH_CB()


_detached = set()  # threads freeing clients collected without close()
_detached_lock = threading.Lock()


def _free_detached(handle):
    def free():
        try:
            lib.mqtt_client_free(handle)
        finally:
            with _detached_lock:
                _detached.discard(thread)

    thread = threading.Thread(target=free, name="mqtt5c-free", daemon=True)
    with _detached_lock:
        _detached.add(thread)
    try:
        thread.start()
    except RuntimeError:  # the interpreter is shutting down: no new threads
        with _detached_lock:
            _detached.discard(thread)
        lib.mqtt_client_free(handle)


def _join_detached():
    """Waits until the frees of clients collected without close() are done."""
    with _detached_lock:
        pending = list(_detached)
    for thread in pending:
        thread.join()


@atexit.register
def _close_all():
    # Before the interpreter finalizes: a library thread taking the GIL
    # then is ended with pthread_exit, whose unwinding through the
    # library's frames aborts the process. A freed client calls nothing.
    for client in list(_live):
        try:
            client.close()
        except Exception:
            pass
    with _detached_lock:
        pending = list(_detached)
    for thread in pending:
        thread.join()


def _subscribe_options(qos, no_local, retain_as_published, retain_handling):
    if retain_handling not in (0, 1, 2):
        raise ValueError("retain_handling must be 0 (send), 1 (new subscriptions only) or 2 (never)")
    return int(qos) | (4 if no_local else 0) | (8 if retain_as_published else 0) | (retain_handling << 4)


def _payload(payload):
    return _as_bytes(payload, "payload") if payload is not None else b""


_BY_QOS = ("messages_sent", "payload_bytes_sent", "messages_received", "payload_bytes_received")


@dataclasses.dataclass(frozen=True)
class Stats:
    """All of a client's counters at once (``mqtt5c_stats``; the header
    documents each field), cumulative over its connections except the
    "now" ones (``*_in_flight``, ``offline_queue_length``,
    ``delivery_queue_length``). The four by-QoS fields are tuples indexed
    by QoS (``stats.messages_sent[1]``: QoS 1 messages sent). ``size`` is
    the bytes the library filled: an older library leaves the fields it
    does not know 0. Each counter is exact; together they are not one
    instant's snapshot."""

    size: int
    messages_sent: tuple
    payload_bytes_sent: tuple
    messages_received: tuple
    payload_bytes_received: tuple
    reconnects: int
    reconnect_attempts: int
    outbound_in_flight: int
    inbound_in_flight: int
    offline_queue_length: int
    queued: int
    queue_dropped: int
    queue_expired: int
    qos0_dropped: int
    delivery_queue_length: int
    delivery_queue_peak: int
    delivery_queue_peak_bytes: int
    receive_maximum_exceeded: int
    inbound_inflight_peak: int
    resubscribe_failed: int
    writes: int
    log_dropped: int

    @classmethod
    def _from_c(cls, raw):
        values = {}
        for name, _ in _lib.Stats._fields_:
            v = getattr(raw, name)
            values[name] = tuple(v) if name in _BY_QOS else int(v)
        return cls(**values)


class Connection:
    """What ``Client.connect`` returns: a context manager that disconnects
    (``Client.disconnect()``) when its block ends, keeping the client."""

    def __init__(self, client):
        self.client = client

    def __enter__(self):
        return self.client

    def __exit__(self, *exc):
        self.client._disconnect_quietly()


class Client:
    """An MQTT v5 client.

    ``Client(options)`` copies ``options`` (an ``Options``; or give the
    settings as keywords: ``Client(client_id="a", keep_alive=30)``).
    A context manager: the end of ``with Client(...) as c:`` disconnects
    (when connected) and closes. Every method may be called from any
    thread, concurrently, including from the client's own callbacks.

    Methods raise ``MqttError`` subclasses on failure; methods that return
    a reason code return the success codes (0, 0x10 no matching
    subscribers, a granted QoS, 0x11 no subscription existed) as
    ``ReasonCode`` values.
    """

    def __init__(self, options=None, *, on_message=None, on_connection=None,
                 on_pre_connect=None, on_auth=None, **settings):
        self._handle = None
        self._key = next(_keys)
        self._on_message = None
        self._on_connection = None
        self._on_pre_connect = None
        self._on_auth = None
        self._on_log = None
        self._routes = {}  # filter -> route key
        self._pending = set()  # keys of publish_async completions not yet called
        self._lock = threading.Lock()
        if options is not None and settings:
            raise TypeError("give Options or keyword settings, not both")
        with (Options(**settings) if options is None else contextlib.nullcontext(options)) as opts:
            handle = lib.mqtt_client_new(opts._h)
            if not handle:
                # NULL has no code: with persistence it is the store (in use,
                # unreadable), else a caught panic. The text says which.
                raise error_for(ErrorCode.PERSISTENCE if opts._persistence else ErrorCode.INTERNAL, "Client")
        self._handle = handle
        _clients[self._key] = weakref.ref(self)
        _live.add(self)
        self.on_message = on_message
        self.on_connection = on_connection
        self.on_pre_connect = on_pre_connect
        self.on_auth = on_auth

    # ---- lifetime

    @property
    def _h(self):
        handle = self._handle
        if not handle:
            raise BadStateError(-12, "the client is closed", "Client")
        return handle

    @property
    def closed(self):
        return not self._handle

    def close(self):
        """Frees the client: closes the connection without DISCONNECT (the
        broker publishes the will; call ``disconnect()`` first for a clean
        end), drops messages and events not delivered yet and
        ``publish_async`` completions not called yet. Idempotent.

        Blocks until no callback of the client runs on another thread
        (call it from a callback too: it then does not wait for that
        one); calls other threads are making on the client return promptly
        with an error. Afterwards no callback runs, and every call raises
        ``BadStateError``. Do not hold a lock a callback waits for while
        calling this: it waits for the callback.
        """
        handle = self._detach()
        if handle:
            lib.mqtt_client_free(handle)

    def _detach(self):
        """Takes the handle out (later calls raise BadStateError) and drops
        the client's entries from the module tables, so that a callback
        still starting finds nothing to call. Returns the handle to free."""
        with self._lock:
            handle, self._handle = self._handle, None
        if not handle:
            return None
        _clients.pop(self._key, None)
        for key in self._routes.values():
            _routes.pop(key, None)
        self._routes.clear()
        for key in list(self._pending):
            _completions.pop(key, None)
        self._pending.clear()
        _live.discard(self)
        return handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self._disconnect_quietly()
        finally:
            self.close()

    def __del__(self):
        # Collected without close(): free on a thread of our own. This may
        # run on any thread at any allocation, maybe one holding a lock that
        # a callback of this client waits for, and freeing waits for the
        # callbacks: done here, that would be a deadlock.
        try:
            handle = self._detach()
        except Exception:
            return
        if handle:
            _free_detached(handle)

    # ---- callbacks

    def _register(self, setter, thunk, null, fn):
        check(setter(self._h, thunk if fn is not None else null, self._key), "set callback")

    @property
    def on_message(self):
        """``fn(message: Message)`` for each received message not routed to a
        ``subscribe(callback=...)``; None removes it. Runs on a library
        thread; may call any method of the client."""
        return self._on_message

    @on_message.setter
    def on_message(self, fn):
        self._on_message = fn
        self._register(lib.mqtt_set_message_callback, _MESSAGE_THUNK, _NULL_MESSAGE_CB, fn)

    @property
    def on_connection(self):
        """``fn(event: Event, detail)`` when the connection goes up or down,
        in order with the messages. ``detail``: for ``CONNECTED`` the
        CONNACK reason (0); for ``DISCONNECTED`` the DISCONNECT reason code
        (a ``ReasonCode``) or an ``ErrorCode`` (CONNECTION_LOST, IO,
        TIMEOUT); for ``RECONNECTING`` the attempt's number (an int); for
        ``RESUBSCRIBE_FAILED`` the refusal or error (``mqtt5c.last_error()``
        called inside the callback names the filter)."""
        return self._on_connection

    @on_connection.setter
    def on_connection(self, fn):
        self._on_connection = fn
        self._register(lib.mqtt_set_connection_callback, _CONNECTION_THUNK, _NULL_CONNECTION_CB, fn)

    @property
    def on_pre_connect(self):
        """``fn(url: str, attempt: int, options: Options)`` before every
        connection attempt; ``options`` is the client's own copy, valid
        during the call (set fresh credentials there). Return False to
        skip the attempt."""
        return self._on_pre_connect

    @on_pre_connect.setter
    def on_pre_connect(self, fn):
        self._on_pre_connect = fn
        self._register(lib.mqtt_set_pre_connect_callback, _PRE_CONNECT_THUNK, _NULL_PRE_CONNECT_CB, fn)

    @property
    def on_auth(self):
        """``fn(reason_code, method: str, data: bytes | None)`` for each step
        of enhanced authentication (``Options.set_auth``): return the
        answer's data (bytes, or None for none) to go on; raise to abort
        (with the exception's ``reason_code`` if it has one, else 0x80)."""
        return self._on_auth

    @on_auth.setter
    def on_auth(self, fn):
        self._on_auth = fn
        self._register(lib.mqtt_set_auth_callback, _AUTH_THUNK, _NULL_AUTH_CB, fn)

    # ---- connection

    def connect(self, url):
        """Connects to ``url`` ("mqtt://host:port", "mqtts://", "ws://",
        "wss://", "unix:///path"); blocks until CONNACK or the connect
        timeout. Returns a ``Connection``, a context manager that
        disconnects at the end of its block (ignoring it is fine).
        Raises ``ReasonCodeError`` when the broker refuses."""
        check(lib.mqtt_connect(self._h, cstr(url, "url")), "connect")
        return Connection(self)

    def disconnect(self, reason_code=0, properties=None):
        """Sends DISCONNECT (``reason_code`` 0x04 asks for the will) and closes
        the connection; the client may connect again."""
        with _c_properties(properties) as props:
            check(lib.mqtt_disconnect(self._h, int(reason_code), props), "disconnect")

    def _disconnect_quietly(self):
        # Also while reconnecting: that stops the reconnection.
        if not self._handle:
            return
        try:
            self.disconnect()
        except NotConnectedError:
            pass
        except MqttError as e:
            log.debug("mqtt5c: disconnect at the end of a with block: %s", e)

    def reauthenticate(self, data=None, properties=None):
        """Re-authenticates on the live connection (enhanced authentication)."""
        raw = None if data is None else _as_bytes(data, "data")
        with _c_properties(properties) as props:
            return check(
                lib.mqtt_reauthenticate(self._h, raw, 0 if raw is None else len(raw), props),
                "reauthenticate",
            )

    @property
    def is_connected(self):
        return bool(lib.mqtt_is_connected(self._h))

    @property
    def protocol_version(self):
        """The MQTT version the live connection speaks (``ProtocolVersion``);
        ``NotConnectedError`` without a connection."""
        rc = lib.mqtt_client_protocol_version(self._h)
        if rc < 0:
            raise error_for(rc, "protocol_version")
        return ProtocolVersion(rc)

    @property
    def session_present(self):
        """The last CONNACK's Session Present flag (False before any CONNACK)."""
        return bool(lib.mqtt_session_present(self._h))

    @property
    def client_id(self):
        """The client identifier in use (the server-assigned one after connect)."""
        n = check(lib.mqtt_client_get_id(self._h, None, 0), "client_id")
        buf = ctypes.create_string_buffer(int(n) + 1)
        check(lib.mqtt_client_get_id(self._h, buf, len(buf)), "client_id")
        return buf.value.decode("utf-8")

    def connack_properties(self):
        """The last CONNACK's properties (a copy), or None before any CONNACK."""
        return _owned_to_python(lib.mqtt_connack_properties(self._h))

    def disconnect_properties(self):
        """The properties of the server's DISCONNECT that ended the last
        connection (reason string, server reference, ...), or None."""
        return _owned_to_python(lib.mqtt_disconnect_properties(self._h))

    def stat(self, stat):
        """One counter (``Stat``), cumulative over all connections."""
        value = ctypes.c_uint64()
        check(lib.mqtt_client_get_stat(self._h, int(stat), ctypes.byref(value)), f"stat {stat!r}")
        return value.value

    def stats(self):
        """Every counter at once, as a ``Stats`` (``mqtt_client_get_stats``):
        messages and payload bytes in and out by QoS, reconnects, in flight,
        queued, dropped. Does not block."""
        raw = _lib.Stats()
        check(lib.mqtt_client_get_stats(self._h, ctypes.byref(raw), ctypes.sizeof(raw)), "stats")
        return Stats._from_c(raw)

    # ---- logging

    def set_logging(self, level=LogLevel.INFO, callback=None):
        """Turns the client's diagnostic lines on at ``level`` (a
        ``LogLevel``: that level and the more severe ones) or, with
        ``level`` None, off (the default: the library logs nothing).

        Without ``callback`` each line goes to the ``logging`` module,
        logger ``mqtt5c.client``, at the matching level (ERROR, WARNING,
        INFO, DEBUG), so the application's logging configuration decides
        where it ends up (``logging.basicConfig(level=logging.INFO)``).
        With ``callback``, ``callback(level: LogLevel, line: str)`` gets
        each line instead.

        Thread: either runs on a library thread (the client's callback
        pool), one line at a time, in order with the message and connection
        callbacks, never on the thread that reads the socket; a slow
        handler delays the client's callbacks, not its network. Up to 256
        lines wait for it; more are dropped and counted
        (``stats().log_dropped``). A line never contains a password,
        authentication data or a payload."""
        if level is None:
            self._on_log = None
            check(lib.mqtt_set_log_callback(self._h, _NULL_LOG_CB, None, _NULL_FREE_CB, 0), "set_logging")
            return
        level = LogLevel(level)
        if callback is None:
            def callback(lvl, line, _log=client_log):
                _log.log(lvl.logging_level if isinstance(lvl, LogLevel) else logging.DEBUG, "%s", line)
        self._on_log = callback
        check(lib.mqtt_set_log_callback(self._h, _LOG_THUNK, self._key, _NULL_FREE_CB, int(level)), "set_logging")

    # ---- publish

    def publish(self, topic, payload=b"", qos=QoS.AT_MOST_ONCE, retain=False, properties=None):
        """Publishes ``payload`` (bytes-like; a str is sent as UTF-8).
        Blocks: QoS 0 until written; QoS 1/2 until acknowledged. Returns
        the reason code (``SUCCESS``, or ``NO_MATCHING_SUBSCRIBERS``, both
        successes); raises on a failure."""
        data = _payload(payload)
        with _c_properties(properties) as props:
            return check(
                lib.mqtt_publish(self._h, cstr(topic, "topic"), data, len(data), int(qos), bool(retain), props),
                f"publish to {topic!r}",
            )

    def publish_async(self, topic, payload=b"", qos=QoS.AT_MOST_ONCE, retain=False, properties=None,
                      callback=None):
        """Publishes without waiting for the acknowledgement; returns once
        written. ``callback(result, ack_properties)``, if given, runs once
        on a library thread: ``result`` is 0 / the PUBACK or PUBCOMP reason
        code, or a negative ``ErrorCode`` (CONNECTION_LOST, QUEUE_FULL,
        EXPIRED). Not called when the client is closed first."""
        data = _payload(payload)
        key = 0
        thunk = _NULL_PUBLISH_CB
        if callback is not None:
            key = next(_keys)
            _completions[key] = (weakref.ref(self), callback)
            self._pending.add(key)
            thunk = _PUBLISH_THUNK
        try:
            with _c_properties(properties) as props:
                rc = lib.mqtt_publish_async(
                    self._h, cstr(topic, "topic"), data, len(data), int(qos), bool(retain), props, thunk, key
                )
                check(rc, f"publish_async to {topic!r}")
        except BaseException:
            if key:
                _completions.pop(key, None)
                self._pending.discard(key)
            raise

    def request(self, topic, payload=b"", qos=QoS.AT_MOST_ONCE, properties=None, timeout=None):
        """Publishes a request with a Response Topic and fresh Correlation
        Data and returns the response ``Message``; ``timeout`` in seconds
        (None: the operation timeout). Raises ``OperationTimeoutError``
        when no response came."""
        data = _payload(payload)
        ms = 0 if timeout is None else max(1, int(timeout * 1000))
        response = _lib.message_p()
        with _c_properties(properties) as props:
            check(
                lib.mqtt_request(
                    self._h, cstr(topic, "topic"), data, len(data), int(qos), props, ms, ctypes.byref(response)
                ),
                f"request to {topic!r}",
            )
        try:
            return Message._from_c(response)
        finally:
            lib.mqtt_message_free(response)

    def ack(self, message, reason_code=0):
        """Acknowledges a received QoS 1/2 message (a ``Message`` or its
        ``ack_id``) with manual acknowledgement on; 0 / QoS 0 does nothing."""
        ack_id = message.ack_id if isinstance(message, Message) else int(message)
        check(lib.mqtt_ack(self._h, ack_id, int(reason_code)), "ack")

    # ---- subscribe

    def subscribe(self, topic_filter, qos=QoS.AT_MOST_ONCE, *, no_local=False, retain_as_published=False,
                  retain_handling=0, properties=None, callback=None):
        """Subscribes; returns the granted QoS (a ``ReasonCode``); raises
        ``ReasonCodeError`` when the broker refuses. With ``callback``
        (``fn(message)``), the messages of this subscription go to it
        instead of ``on_message`` until the filter is unsubscribed or
        subscribed again. ``retain_handling``: 0 send retained messages, 1
        only for a new subscription, 2 never."""
        options = _subscribe_options(qos, no_local, retain_as_published, retain_handling)
        encoded = cstr(topic_filter, "topic filter")
        with _c_properties(properties) as props:
            if callback is None:
                granted = check(lib.mqtt_subscribe(self._h, encoded, options, props), f"subscribe {topic_filter!r}")
                self._forget_route(topic_filter)
                return granted
            key = next(_keys)
            _routes[key] = (weakref.ref(self), callback)
            try:
                granted = check(
                    lib.mqtt_subscribe_cb(self._h, encoded, options, props, _ROUTE_THUNK, key),
                    f"subscribe {topic_filter!r}",
                )
            except BaseException:
                _routes.pop(key, None)
                raise
            self._forget_route(topic_filter)
            self._routes[topic_filter] = key
            return granted

    def subscribe_many(self, subscriptions, properties=None):
        """Subscribes to several filters in one SUBSCRIBE: each item is a
        filter, or (filter, qos), or (filter, qos | SubscribeFlag...).
        Returns the reason code of each (granted QoS); raises
        ``ReasonCodeError`` (its ``results`` attribute holding them all)
        when the broker refused any."""
        items = [(s, 0) if isinstance(s, str) else (s[0], int(s[1])) for s in subscriptions]
        filters = (ctypes.c_char_p * len(items))(*[cstr(f, "topic filter") for f, _ in items])
        options = (ctypes.c_int * len(items))(*[o for _, o in items])
        results = (ctypes.c_int * len(items))()
        with _c_properties(properties) as props:
            rc = lib.mqtt_subscribe_many(self._h, filters, options, len(items), props, results)
            self._many_result(rc, results, "subscribe_many")
        for f, _ in items:
            self._forget_route(f)
        return [reason(r) for r in results]

    def unsubscribe(self, topic_filter, properties=None):
        """Unsubscribes; returns ``SUCCESS`` or ``NO_SUBSCRIPTION_EXISTED``."""
        with _c_properties(properties) as props:
            rc = check(
                lib.mqtt_unsubscribe(self._h, cstr(topic_filter, "topic filter"), props),
                f"unsubscribe {topic_filter!r}",
            )
        self._forget_route(topic_filter)
        return rc

    def unsubscribe_many(self, topic_filters, properties=None):
        """Unsubscribes from several filters in one UNSUBSCRIBE; returns the
        reason code of each, raises as ``subscribe_many``."""
        topic_filters = list(topic_filters)
        filters = (ctypes.c_char_p * len(topic_filters))(*[cstr(f, "topic filter") for f in topic_filters])
        results = (ctypes.c_int * len(topic_filters))()
        with _c_properties(properties) as props:
            rc = lib.mqtt_unsubscribe_many(self._h, filters, len(topic_filters), props, results)
            self._many_result(rc, results, "unsubscribe_many")
        for f in topic_filters:
            self._forget_route(f)
        return [reason(r) for r in results]

    @staticmethod
    def _many_result(rc, results, where):
        """Raises for a failure; call it before any other library call (the
        text is this thread's last error)."""
        if rc < 0 or rc >= 0x80:
            err = error_for(rc, where)
            err.results = [reason(r) for r in results] if rc > 0 else None
            raise err

    def _forget_route(self, topic_filter):
        key = self._routes.pop(topic_filter, None)
        if key is not None:
            _routes.pop(key, None)
