"""A received message, copied out of the library into Python objects."""

import ctypes

from ._lib import lib
from .constants import QoS
from .properties import Properties


class Message:
    """A received message. Owns its data (``payload`` is ``bytes``), so it
    may be kept and used from any thread after its callback returned.

    ``ack_id`` is for ``Client.ack`` with manual acknowledgement on
    (``Options(manual_ack=True)``); 0 otherwise and for QoS 0.
    """

    __slots__ = ("topic", "payload", "qos", "retain", "dup", "properties", "ack_id")

    def __init__(self, topic, payload=b"", qos=QoS.AT_MOST_ONCE, retain=False, dup=False,
                 properties=None, ack_id=0):
        self.topic = topic
        self.payload = payload
        self.qos = QoS(qos)
        self.retain = retain
        self.dup = dup
        self.properties = properties if properties is not None else Properties()
        self.ack_id = ack_id

    @classmethod
    def _from_c(cls, handle):
        """A copy of the C message ``handle`` (borrowed, not freed)."""
        length = ctypes.c_size_t()
        ptr = lib.mqtt_message_payload(handle, ctypes.byref(length))
        payload = ctypes.string_at(ptr, length.value) if ptr and length.value else b""
        return cls(
            topic=lib.mqtt_message_topic(handle).decode("utf-8"),
            payload=payload,
            qos=lib.mqtt_message_qos(handle),
            retain=bool(lib.mqtt_message_retain(handle)),
            dup=bool(lib.mqtt_message_dup(handle)),
            properties=Properties._from_c(lib.mqtt_message_properties(handle)),
            ack_id=lib.mqtt_message_ack_id(handle),
        )

    def __repr__(self):
        return (
            f"Message(topic={self.topic!r}, payload={self.payload!r}, qos={int(self.qos)}, "
            f"retain={self.retain}, dup={self.dup}, properties={self.properties!r})"
        )
