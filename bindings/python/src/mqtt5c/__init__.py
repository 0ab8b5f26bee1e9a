"""mqtt5c: Python binding (ctypes) for libmqtt5c, an MQTT v5.0 client library.

    import mqtt5c

    with mqtt5c.Client(client_id="demo") as client:
        client.on_message = lambda m: print(m.topic, m.payload)
        client.connect("mqtt://127.0.0.1:1883")
        client.subscribe("demo/#", qos=1)
        client.publish("demo/hello", b"hi", qos=1,
                       properties=mqtt5c.Properties(content_type="text/plain"))

See README.md (bindings/python) for finding the library, threads and
callbacks, errors and the full API.
"""

from ._lib import lib as _clib
from .client import Client, Connection, Stats
from .constants import (
    ErrorCode,
    Event,
    LogLevel,
    PropertyId,
    ProtocolVersion,
    QoS,
    QueuePolicy,
    ReasonCode,
    Stat,
    SubscribeFlag,
    TlsKeyType,
)
from .errors import (
    AlreadyConnectedError,
    BadStateError,
    ConnectionLostError,
    ExpiredError,
    InternalError,
    InvalidArgumentError,
    MqttError,
    NetworkError,
    NotConnectedError,
    NotFoundError,
    OperationTimeoutError,
    PacketTooLargeError,
    PersistenceError,
    ProtocolError,
    QueueFullError,
    ReasonCodeError,
    TLSError,
    last_error,
    strerror,
)
from .message import Message
from .options import Options
from .properties import Properties

__version__ = "0.1.0"


def library_version():
    """The loaded library's version text, e.g. "mqtt5c 0.1.0"."""
    return _clib.mqtt_version().decode("utf-8")


def library_version_number():
    """The loaded library's version as 0xXXYYZZ."""
    return _clib.mqtt_version_number()


def library_path():
    """Where the library was loaded from (a path or a name dlopen resolved)."""
    return _clib.mqtt5c_path


def global_init(worker_threads=0):
    """Sets the number of the library's runtime threads; before any Client
    is made (``BadStateError`` after). 0: the default."""
    from .errors import check

    check(_clib.mqtt_global_init(worker_threads), "global_init")


def global_cleanup():
    """Stops every thread of the library and waits until they have exited
    (``mqtt_global_cleanup``), once every Client is closed: before
    unloading the library, or for a host that waits for native threads.
    The next Client starts them again. Waits first for the frees of
    clients collected without ``close()``. Raises ``BadStateError`` while
    a client is not closed (nothing is stopped) or from a callback;
    ``OperationTimeoutError`` when a library thread stayed busy 30 s."""
    from .client import _join_detached
    from .errors import check

    _join_detached()
    check(_clib.mqtt_global_cleanup(), "global_cleanup")


__all__ = [
    "AlreadyConnectedError",
    "BadStateError",
    "Client",
    "Connection",
    "ConnectionLostError",
    "ErrorCode",
    "Event",
    "LogLevel",
    "ExpiredError",
    "InternalError",
    "InvalidArgumentError",
    "Message",
    "MqttError",
    "NetworkError",
    "NotConnectedError",
    "NotFoundError",
    "OperationTimeoutError",
    "Options",
    "PacketTooLargeError",
    "PersistenceError",
    "Properties",
    "PropertyId",
    "ProtocolError",
    "ProtocolVersion",
    "QoS",
    "QueueFullError",
    "QueuePolicy",
    "ReasonCode",
    "ReasonCodeError",
    "Stat",
    "Stats",
    "SubscribeFlag",
    "TLSError",
    "TlsKeyType",
    "global_cleanup",
    "global_init",
    "last_error",
    "library_path",
    "library_version",
    "library_version_number",
    "strerror",
]
