"""MQTT v5 properties as a plain Python object.

``Properties`` holds values only; it becomes a C ``mqtt_properties`` for
the duration of a call (``_c_properties``) and is read back from one in a
copy (``_from_c``), so no Python object ever borrows C memory: the
properties of a received message stay valid after its callback returned.
"""

import contextlib
import ctypes

from ._lib import lib
from .constants import PropertyId
from .errors import MqttError, check, cstr

INT, STRING, BINARY, USER = "int", "string", "binary", "user"

# The value type of each property, for the setter and getter to use.
KIND = {
    PropertyId.PAYLOAD_FORMAT_INDICATOR: INT,
    PropertyId.MESSAGE_EXPIRY_INTERVAL: INT,
    PropertyId.CONTENT_TYPE: STRING,
    PropertyId.RESPONSE_TOPIC: STRING,
    PropertyId.CORRELATION_DATA: BINARY,
    PropertyId.SUBSCRIPTION_IDENTIFIER: INT,
    PropertyId.SESSION_EXPIRY_INTERVAL: INT,
    PropertyId.ASSIGNED_CLIENT_IDENTIFIER: STRING,
    PropertyId.SERVER_KEEP_ALIVE: INT,
    PropertyId.AUTHENTICATION_METHOD: STRING,
    PropertyId.AUTHENTICATION_DATA: BINARY,
    PropertyId.REQUEST_PROBLEM_INFORMATION: INT,
    PropertyId.WILL_DELAY_INTERVAL: INT,
    PropertyId.REQUEST_RESPONSE_INFORMATION: INT,
    PropertyId.RESPONSE_INFORMATION: STRING,
    PropertyId.SERVER_REFERENCE: STRING,
    PropertyId.REASON_STRING: STRING,
    PropertyId.RECEIVE_MAXIMUM: INT,
    PropertyId.TOPIC_ALIAS_MAXIMUM: INT,
    PropertyId.TOPIC_ALIAS: INT,
    PropertyId.MAXIMUM_QOS: INT,
    PropertyId.RETAIN_AVAILABLE: INT,
    PropertyId.USER_PROPERTY: USER,
    PropertyId.MAXIMUM_PACKET_SIZE: INT,
    PropertyId.WILDCARD_SUBSCRIPTION_AVAILABLE: INT,
    PropertyId.SUBSCRIPTION_IDENTIFIER_AVAILABLE: INT,
    PropertyId.SHARED_SUBSCRIPTION_AVAILABLE: INT,
}

# The two repeatable properties are lists, under their own plural names.
_LISTS = {
    "user_properties": PropertyId.USER_PROPERTY,
    "subscription_identifiers": PropertyId.SUBSCRIPTION_IDENTIFIER,
}
_SINGLE = {
    pid.name.lower(): pid for pid in PropertyId if pid not in _LISTS.values()
}


def _as_bytes(value, what):
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        return bytes(value)
    except TypeError:
        raise TypeError(f"{what} must be bytes-like or str, not {type(value).__name__}") from None


class Properties:
    """MQTT v5 properties: each single-valued property is an attribute
    named after it in lower case (``content_type``, ``response_topic``,
    ``correlation_data``, ``message_expiry_interval``, ``reason_string``,
    ...; None when absent); ``user_properties`` is a list of (key, value)
    string pairs in order, ``subscription_identifiers`` a list of ints.
    Binary properties (``correlation_data``, ``authentication_data``) are
    bytes. Indexing by ``PropertyId`` works too: ``props[PropertyId.CONTENT_TYPE]``.

    Which property suits which packet is checked by the library when the
    properties are used (``InvalidArgumentError`` naming the property).
    """

    __slots__ = ("_values", "user_properties", "subscription_identifiers")

    def __init__(self, user_properties=(), subscription_identifiers=(), **values):
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "user_properties", _pairs(user_properties))
        object.__setattr__(self, "subscription_identifiers", [int(i) for i in subscription_identifiers])
        for name, value in values.items():
            setattr(self, name, value)

    def __getattr__(self, name):
        try:
            pid = _SINGLE[name]
        except KeyError:
            raise AttributeError(f"no MQTT property {name!r}") from None
        return self._values.get(pid)

    def __setattr__(self, name, value):
        if name in _LISTS:
            self[_LISTS[name]] = value
            return
        try:
            pid = _SINGLE[name]
        except KeyError:
            raise AttributeError(f"no MQTT property {name!r}") from None
        self[pid] = value

    def __getitem__(self, pid):
        pid = PropertyId(pid)
        if pid == PropertyId.USER_PROPERTY:
            return self.user_properties
        if pid == PropertyId.SUBSCRIPTION_IDENTIFIER:
            return self.subscription_identifiers
        return self._values.get(pid)

    def __setitem__(self, pid, value):
        pid = PropertyId(pid)
        if pid == PropertyId.USER_PROPERTY:
            object.__setattr__(self, "user_properties", _pairs(value))
        elif pid == PropertyId.SUBSCRIPTION_IDENTIFIER:
            object.__setattr__(self, "subscription_identifiers", [int(i) for i in value])
        elif value is None:
            self._values.pop(pid, None)
        elif KIND[pid] == INT:
            self._values[pid] = int(value)
        elif KIND[pid] == STRING:
            if not isinstance(value, str):
                raise TypeError(f"{pid.name.lower()} must be str, not {type(value).__name__}")
            self._values[pid] = value
        else:
            self._values[pid] = _as_bytes(value, pid.name.lower())

    def items(self):
        """(PropertyId, value) for each property present, lists included."""
        out = sorted(self._values.items())
        if self.user_properties:
            out.append((PropertyId.USER_PROPERTY, list(self.user_properties)))
        if self.subscription_identifiers:
            out.append((PropertyId.SUBSCRIPTION_IDENTIFIER, list(self.subscription_identifiers)))
        return out

    def __bool__(self):
        return bool(self._values or self.user_properties or self.subscription_identifiers)

    def __eq__(self, other):
        if not isinstance(other, Properties):
            return NotImplemented
        return self.items() == other.items()

    def __repr__(self):
        parts = [f"{pid.name.lower()}={value!r}" for pid, value in sorted(self._values.items())]
        if self.user_properties:
            parts.append(f"user_properties={self.user_properties!r}")
        if self.subscription_identifiers:
            parts.append(f"subscription_identifiers={self.subscription_identifiers!r}")
        return f"Properties({', '.join(parts)})"

    def _fill(self, handle):
        """Writes these properties into the C list ``handle``."""
        for pid, value in sorted(self._values.items()):
            kind = KIND[pid]
            if kind == INT:
                check(lib.mqtt_properties_set_int(handle, pid, value), f"property {pid.name}")
            elif kind == STRING:
                check(
                    lib.mqtt_properties_set_string(handle, pid, cstr(value, pid.name.lower())),
                    f"property {pid.name}",
                )
            else:
                check(
                    lib.mqtt_properties_set_binary(handle, pid, value, len(value)),
                    f"property {pid.name}",
                )
        for sid in self.subscription_identifiers:
            check(
                lib.mqtt_properties_set_int(handle, PropertyId.SUBSCRIPTION_IDENTIFIER, sid),
                "property SUBSCRIPTION_IDENTIFIER",
            )
        for key, value in self.user_properties:
            check(
                lib.mqtt_properties_add_user(handle, cstr(key, "user property key"), cstr(value, "user property value")),
                f"user property {key!r}",
            )

    @classmethod
    def _from_c(cls, handle):
        """A copy of the C property list ``handle`` (borrowed, not freed)."""
        props = cls()
        if not handle:
            return props
        out = ctypes.c_uint32()
        length = ctypes.c_size_t()
        for pid, kind in KIND.items():
            count = lib.mqtt_properties_count(handle, pid)
            if count == 0:
                continue
            if kind == USER:
                key, value = ctypes.c_void_p(), ctypes.c_void_p()
                for i in range(count):
                    check(
                        lib.mqtt_properties_user_at(handle, i, ctypes.byref(key), ctypes.byref(value)),
                        "reading a user property",
                    )
                    props.user_properties.append((_text(key.value), _text(value.value)))
            elif pid == PropertyId.SUBSCRIPTION_IDENTIFIER:
                for i in range(count):
                    check(
                        lib.mqtt_properties_get_int_at(handle, pid, i, ctypes.byref(out)),
                        "reading a subscription identifier",
                    )
                    props.subscription_identifiers.append(out.value)
            elif kind == INT:
                check(lib.mqtt_properties_get_int(handle, pid, ctypes.byref(out)), f"reading {pid.name}")
                props._values[pid] = out.value
            elif kind == STRING:
                ptr = lib.mqtt_properties_get_string_len(handle, pid, ctypes.byref(length))
                if ptr:
                    props._values[pid] = ctypes.string_at(ptr, length.value).decode("utf-8")
            else:
                ptr = lib.mqtt_properties_get_binary(handle, pid, ctypes.byref(length))
                if ptr:
                    props._values[pid] = ctypes.string_at(ptr, length.value)
        return props


def _pairs(value):
    """User properties as a list of (str, str); a mapping gives its items."""
    if hasattr(value, "items"):
        value = value.items()
    return [(str(k), str(v)) for k, v in value]


def _text(ptr):
    return ctypes.string_at(ptr).decode("utf-8")


@contextlib.contextmanager
def _c_properties(props):
    """A C property list holding ``props`` for the ``with`` block (NULL for
    None), freed afterwards. Also takes a mapping: ``{"content_type": ...}``."""
    if props is None:
        yield None
        return
    if not isinstance(props, Properties):
        props = Properties(**props)
    handle = lib.mqtt_properties_new()
    if not handle:
        raise MqttError(-8, "mqtt_properties_new returned NULL", "properties")
    try:
        props._fill(handle)
        yield handle
    finally:
        lib.mqtt_properties_free(handle)


def _owned_to_python(handle):
    """Reads and frees a property list the caller owns; None for NULL."""
    if not handle:
        return None
    try:
        return Properties._from_c(handle)
    finally:
        lib.mqtt_properties_free(handle)
