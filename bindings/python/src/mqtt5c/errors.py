"""Exceptions: one class per library error code, one for broker refusals.

Every exception is an ``MqttError`` carrying ``rc`` (what the C function
returned), ``reason_code`` (the MQTT reason code when the broker refused,
else None), ``text`` (``mqtt_last_error()``, read on the calling thread
right after the failing call, as the C API requires) and ``strerror`` (the
static text of ``rc``).
"""

from ._lib import lib
from .constants import ErrorCode, reason


class MqttError(Exception):
    """A call into libmqtt5c failed."""

    def __init__(self, rc, text="", where=""):
        self.rc = rc
        self.reason_code = reason(rc) if rc > 0 else None
        self.text = text
        self.strerror = strerror(rc)
        self.where = where
        detail = text or self.strerror
        prefix = f"{where}: " if where else ""
        code = f"reason code 0x{rc:02X}" if rc > 0 else _code_name(rc)
        super().__init__(f"{prefix}{detail} ({code})")


class InvalidArgumentError(MqttError, ValueError):
    pass


class NotConnectedError(MqttError):
    pass


class ConnectionLostError(MqttError):
    pass


class OperationTimeoutError(MqttError, TimeoutError):
    """The operation timed out (also a builtin ``TimeoutError``)."""


class NetworkError(MqttError, OSError):
    """A network error (also a builtin ``OSError``)."""


class ProtocolError(MqttError):
    pass


class PacketTooLargeError(MqttError):
    pass


class InternalError(MqttError):
    pass


class NotFoundError(MqttError, LookupError):
    pass


class TLSError(MqttError):
    pass


class AlreadyConnectedError(MqttError):
    pass


class BadStateError(MqttError):
    """Wrong state for the call; also any call on a closed Client."""


class QueueFullError(MqttError):
    pass


class ExpiredError(MqttError):
    pass


class PersistenceError(MqttError):
    pass


class ReasonCodeError(MqttError):
    """The broker refused: ``reason_code`` is its reason code (>= 0x80)."""


_BY_CODE = {
    ErrorCode.INVALID_ARGUMENT: InvalidArgumentError,
    ErrorCode.NOT_CONNECTED: NotConnectedError,
    ErrorCode.CONNECTION_LOST: ConnectionLostError,
    ErrorCode.TIMEOUT: OperationTimeoutError,
    ErrorCode.IO: NetworkError,
    ErrorCode.PROTOCOL: ProtocolError,
    ErrorCode.PACKET_TOO_LARGE: PacketTooLargeError,
    ErrorCode.INTERNAL: InternalError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.TLS: TLSError,
    ErrorCode.ALREADY_CONNECTED: AlreadyConnectedError,
    ErrorCode.BAD_STATE: BadStateError,
    ErrorCode.QUEUE_FULL: QueueFullError,
    ErrorCode.EXPIRED: ExpiredError,
    ErrorCode.PERSISTENCE: PersistenceError,
}


def _code_name(rc):
    try:
        return f"{ErrorCode(rc).name} {rc}"
    except ValueError:
        return f"code {rc}"


def strerror(rc):
    """The library's static text for any return value or reason code."""
    return lib.mqtt_strerror(rc).decode("utf-8", "replace")


def last_error():
    """``mqtt_last_error()``: this thread's most recent failure detail."""
    return lib.mqtt_last_error().decode("utf-8", "replace")


def error_for(rc, where="", text=None):
    """The exception for return value ``rc``; reads ``last_error()`` unless given."""
    if text is None:
        text = last_error()
    cls = ReasonCodeError if rc > 0 else _BY_CODE.get(rc, MqttError)
    return cls(rc, text, where)


def cstr(value, what):
    """``value`` (a str, or os.PathLike) as a C string; an embedded NUL is
    refused here, since C would read the text cut short at it."""
    if hasattr(value, "__fspath__"):
        value = value.__fspath__()
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgumentError(ErrorCode.INVALID_ARGUMENT, f"{what} contains a NUL character", what)
    return value.encode("utf-8")


def check(rc, where):
    """Raises for a failure (negative, or a reason code >= 0x80); returns
    ``rc`` otherwise, as a ReasonCode when it is one (0x10 no matching
    subscribers, a granted QoS, ... are successes)."""
    # MQTT5C_SUCCEEDED(rc), in Python: calling mqtt_succeeded() here would be
    # a library call between the failure and reading mqtt_last_error().
    if not 0 <= rc < 0x80:
        raise error_for(rc, where)
    return reason(rc)
