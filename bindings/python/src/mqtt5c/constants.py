"""The header's constants, by value, with Python names.

Each enum mirrors one family of ``#define``s in include/mqtt5c.h (named
in its docstring); tests/test_constants.py parses the header and fails when
a value or a member differs, so the two cannot drift apart.
"""

import enum


class ErrorCode(enum.IntEnum):
    """The library's own return codes (header: ``*_OK``, ``*_ERR_*``)."""

    OK = 0
    INVALID_ARGUMENT = -1
    NOT_CONNECTED = -2
    CONNECTION_LOST = -3
    TIMEOUT = -4
    IO = -5
    PROTOCOL = -6
    PACKET_TOO_LARGE = -7
    INTERNAL = -8
    NOT_FOUND = -9
    TLS = -10
    ALREADY_CONNECTED = -11
    BAD_STATE = -12
    QUEUE_FULL = -13
    EXPIRED = -14
    PERSISTENCE = -15


class QoS(enum.IntEnum):
    """Quality of service (header: ``*_QOS0`` .. ``*_QOS2``)."""

    AT_MOST_ONCE = 0
    AT_LEAST_ONCE = 1
    EXACTLY_ONCE = 2


class SubscribeFlag(enum.IntFlag):
    """Subscription options besides the QoS (header: ``*_SUB_*``)."""

    NO_LOCAL = 4
    RETAIN_AS_PUBLISHED = 8
    RETAIN_HANDLING_NEW_ONLY = 16
    RETAIN_HANDLING_NONE = 32


class Event(enum.IntEnum):
    """What the connection callback reports (header: ``*_EVENT_*``)."""

    CONNECTED = 1
    DISCONNECTED = 2
    RECONNECTING = 3
    RESUBSCRIBE_FAILED = 4


class Stat(enum.IntEnum):
    """The client's counters, for ``Client.stat`` (header: ``*_STAT_*``)."""

    RECEIVE_MAXIMUM_EXCEEDED = 1
    INBOUND_INFLIGHT_PEAK = 2
    DELIVERY_QUEUE_PEAK = 3
    QOS0_DROPPED = 4
    QUEUED = 5
    QUEUE_DROPPED = 6
    QUEUE_EXPIRED = 7
    QUEUE_LENGTH = 8
    RESUBSCRIBE_FAILED = 9
    DELIVERY_QUEUE_PEAK_BYTES = 10


class LogLevel(enum.IntEnum):
    """Levels of the client's log lines (header: ``*_LOG_*``), most severe
    first; ``Client.set_logging(level)`` gets that level and the ones above."""

    ERROR = 1
    WARNING = 2
    INFO = 3
    DEBUG = 4

    @property
    def logging_level(self):
        """The ``logging`` module's level for this one."""
        import logging

        return {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}[self.value]


class QueuePolicy(enum.IntEnum):
    """What a full offline queue does (header: ``*_QUEUE_*``)."""

    FAIL_NEW = 0
    DROP_OLDEST = 1


class PropertyId(enum.IntEnum):
    """MQTT v5 property identifiers (header: ``*_PROP_*``)."""

    PAYLOAD_FORMAT_INDICATOR = 1
    MESSAGE_EXPIRY_INTERVAL = 2
    CONTENT_TYPE = 3
    RESPONSE_TOPIC = 8
    CORRELATION_DATA = 9
    SUBSCRIPTION_IDENTIFIER = 11
    SESSION_EXPIRY_INTERVAL = 17
    ASSIGNED_CLIENT_IDENTIFIER = 18
    SERVER_KEEP_ALIVE = 19
    AUTHENTICATION_METHOD = 21
    AUTHENTICATION_DATA = 22
    REQUEST_PROBLEM_INFORMATION = 23
    WILL_DELAY_INTERVAL = 24
    REQUEST_RESPONSE_INFORMATION = 25
    RESPONSE_INFORMATION = 26
    SERVER_REFERENCE = 28
    REASON_STRING = 31
    RECEIVE_MAXIMUM = 33
    TOPIC_ALIAS_MAXIMUM = 34
    TOPIC_ALIAS = 35
    MAXIMUM_QOS = 36
    RETAIN_AVAILABLE = 37
    USER_PROPERTY = 38
    MAXIMUM_PACKET_SIZE = 39
    WILDCARD_SUBSCRIPTION_AVAILABLE = 40
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 41
    SHARED_SUBSCRIPTION_AVAILABLE = 42


class ProtocolVersion(enum.IntEnum):
    """MQTT version (header: ``*_PROTOCOL_*``): ``AUTO`` tries 5.0 and
    falls back to 3.1.1 for a broker that refuses it."""

    AUTO = 0
    V311 = 4
    V5 = 5


class TlsKeyType(enum.IntEnum):
    """Key type of ``Options.set_tls_client_signer`` (header: ``*_TLS_KEY_*``)."""

    ECDSA_P256 = 1
    ECDSA_P384 = 2
    RSA = 3
    ED25519 = 4


class ReasonCode(enum.IntEnum):
    """MQTT v5 reason codes (spec 2.4), as the broker sends them (header:
    ``*_RC_*``, where it has them; ``mqtt_strerror`` gives each one's
    text). Below 0x80 a reason code reports success: 0x10 no matching
    subscribers after a publish, a granted QoS 1 or 2 after a subscribe,
    0x11 no subscription existed after an unsubscribe. 0x80 and above are
    failures.
    """

    SUCCESS = 0x00
    GRANTED_QOS1 = 0x01
    GRANTED_QOS2 = 0x02
    DISCONNECT_WITH_WILL_MESSAGE = 0x04
    NO_MATCHING_SUBSCRIBERS = 0x10
    NO_SUBSCRIPTION_EXISTED = 0x11
    CONTINUE_AUTHENTICATION = 0x18
    RE_AUTHENTICATE = 0x19
    UNSPECIFIED_ERROR = 0x80
    MALFORMED_PACKET = 0x81
    PROTOCOL_ERROR = 0x82
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83
    UNSUPPORTED_PROTOCOL_VERSION = 0x84
    CLIENT_IDENTIFIER_NOT_VALID = 0x85
    BAD_USER_NAME_OR_PASSWORD = 0x86
    NOT_AUTHORIZED = 0x87
    SERVER_UNAVAILABLE = 0x88
    SERVER_BUSY = 0x89
    BANNED = 0x8A
    SERVER_SHUTTING_DOWN = 0x8B
    BAD_AUTHENTICATION_METHOD = 0x8C
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_NAME_INVALID = 0x90
    PACKET_IDENTIFIER_IN_USE = 0x91
    PACKET_IDENTIFIER_NOT_FOUND = 0x92
    RECEIVE_MAXIMUM_EXCEEDED = 0x93
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    MESSAGE_RATE_TOO_HIGH = 0x96
    QUOTA_EXCEEDED = 0x97
    ADMINISTRATIVE_ACTION = 0x98
    PAYLOAD_FORMAT_INVALID = 0x99
    RETAIN_NOT_SUPPORTED = 0x9A
    QOS_NOT_SUPPORTED = 0x9B
    USE_ANOTHER_SERVER = 0x9C
    SERVER_MOVED = 0x9D
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
    CONNECTION_RATE_EXCEEDED = 0x9F
    MAXIMUM_CONNECT_TIME = 0xA0
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2


def reason(code):
    """``code`` as a ReasonCode when it is one, else the int unchanged."""
    try:
        return ReasonCode(code)
    except ValueError:
        return code
