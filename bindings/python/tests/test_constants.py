"""The Python constants equal the header's #defines, member for member.

Matches each family by the part of the macro name after its prefix
(``MQTT_`` today, ``MQTT5C_`` or another tomorrow: the prefix may change,
the values may not), so a changed value, a constant added to the header
but not mirrored here, or one mirrored here but gone from the header fails.
"""

import os
import re

import pytest

import mqtt5c

HEADER = os.environ.get(
    "MQTT5C_HEADER",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "include", "mqtt5c.h"),
)

DEFINE = re.compile(r"^#define\s+(\w+)\s+\(?\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*\)?\s*$")

# enum -> regex picking its family's macros; group 1 is the member name.
FAMILIES = [
    (mqtt5c.ErrorCode, re.compile(r"^MQTT[A-Z0-9]*_(?:ERR_(\w+)|(OK))$")),
    (mqtt5c.PropertyId, re.compile(r"^MQTT[A-Z0-9]*_PROP_(\w+)$")),
    (mqtt5c.Event, re.compile(r"^MQTT[A-Z0-9]*_EVENT_(\w+)$")),
    (mqtt5c.Stat, re.compile(r"^MQTT[A-Z0-9]*_STAT_(\w+)$")),
    (mqtt5c.QueuePolicy, re.compile(r"^MQTT[A-Z0-9]*_QUEUE_(\w+)$")),
    (mqtt5c.SubscribeFlag, re.compile(r"^MQTT[A-Z0-9]*_SUB_(\w+)$")),
    (mqtt5c.QoS, re.compile(r"^MQTT[A-Z0-9]*_(QOS\d)$")),
    (mqtt5c.TlsKeyType, re.compile(r"^MQTT[A-Z0-9]*_TLS_KEY_(\w+)$")),
    (mqtt5c.ReasonCode, re.compile(r"^MQTT[A-Z0-9]*_RC_(\w+)$")),
    (mqtt5c.ProtocolVersion, re.compile(r"^MQTT[A-Z0-9]*_PROTOCOL_(\w+)$")),
]
# Families a header may not have yet: skipped (not failed) when absent.
OPTIONAL = {mqtt5c.ReasonCode}

QOS_NAMES = {"QOS0": "AT_MOST_ONCE", "QOS1": "AT_LEAST_ONCE", "QOS2": "EXACTLY_ONCE"}


def header_defines():
    if not os.path.exists(HEADER):
        pytest.skip(f"no header at {HEADER} (set MQTT5C_HEADER)")
    out = {}
    with open(HEADER) as f:
        for line in f:
            m = DEFINE.match(line.strip())
            if m:
                out[m.group(1)] = int(m.group(2), 0)
    return out


@pytest.mark.parametrize("enum,pattern", FAMILIES, ids=[e.__name__ for e, _ in FAMILIES])
def test_enum_matches_header(enum, pattern):
    from_header = {}
    for macro, value in header_defines().items():
        m = pattern.match(macro)
        if m:
            name = next(g for g in m.groups() if g)
            from_header[QOS_NAMES.get(name, name)] = value
    if not from_header and enum in OPTIONAL:
        pytest.skip(f"{HEADER} has no {enum.__name__} constants yet")
    assert from_header, f"no {enum.__name__} constants found in {HEADER}"
    ours = {member.name: int(member.value) for member in enum}
    assert ours == from_header


def test_library_version_matches_header():
    defines = header_defines()
    number = next(v for k, v in defines.items() if k.endswith("VERSION_NUMBER"))
    assert mqtt5c.library_version_number() == number
