"""Failures raise the right exception, with the code and the library's text."""

import pytest

import mqtt5c
from mqtt5c import ErrorCode, Properties, ReasonCode


def test_bad_topic_raises_invalid_argument_with_the_text(broker, topic):
    with mqtt5c.Client() as c:
        c.connect(broker.url)
        with pytest.raises(mqtt5c.InvalidArgumentError) as e:
            c.publish(f"{topic}/+/wild", b"x", qos=1)
        err = e.value
        assert err.rc == ErrorCode.INVALID_ARGUMENT
        assert err.reason_code is None
        assert "wildcard" in err.text or "topic" in err.text, err.text
        assert err.text in str(err)
        assert isinstance(err, ValueError)
        # The connection is intact.
        assert c.publish(f"{topic}/ok", b"x", qos=1) == ReasonCode.NO_MATCHING_SUBSCRIBERS


def test_property_not_allowed_names_it(broker, topic):
    with mqtt5c.Client() as c:
        c.connect(broker.url)
        with pytest.raises(mqtt5c.InvalidArgumentError) as e:
            c.publish(f"{topic}/x", b"", properties=Properties(subscription_identifiers=[7]))
        assert "Subscription Identifier" in e.value.text, e.value.text
        with pytest.raises(mqtt5c.InvalidArgumentError) as e:
            c.publish(f"{topic}/x", b"", properties=Properties(payload_format_indicator=2))
        assert e.value.text


def test_broker_refusal_carries_the_reason_code(make_broker):
    # No anonymous access and no password file: mosquitto refuses every CONNECT.
    refusing = make_broker("allow_anonymous false\n")
    with mqtt5c.Client() as c:
        with pytest.raises(mqtt5c.ReasonCodeError) as e:
            c.connect(refusing.url)
    err = e.value
    assert err.rc >= 0x80
    assert err.reason_code in (ReasonCode.NOT_AUTHORIZED, ReasonCode.BAD_USER_NAME_OR_PASSWORD)
    assert err.strerror == mqtt5c.strerror(err.rc)
    assert f"0x{err.rc:02X}" in str(err)


def test_connection_refused_is_a_network_error(broker):
    port = broker.port
    with mqtt5c.Client(connect_timeout=5000) as c:
        with pytest.raises(mqtt5c.NetworkError) as e:
            c.connect("mqtt://127.0.0.1:1")
        assert e.value.rc == ErrorCode.IO and isinstance(e.value, OSError)
        assert "refused" in e.value.text.lower(), e.value.text
        c.connect(f"mqtt://127.0.0.1:{port}")  # the client is usable afterwards


def test_not_connected_and_closed_client():
    c = mqtt5c.Client()
    with pytest.raises(mqtt5c.NotConnectedError) as e:
        c.publish("t", b"x")
    assert e.value.rc == ErrorCode.NOT_CONNECTED
    with pytest.raises(mqtt5c.NotConnectedError):
        c.disconnect()
    c.close()
    c.close()  # idempotent
    with pytest.raises(mqtt5c.BadStateError):
        c.publish("t", b"x")
    assert c.closed


def test_bad_options_raise_and_name_the_setting(tmp_path):
    with pytest.raises(mqtt5c.InvalidArgumentError) as e:
        mqtt5c.Options(receive_maximum=0)
    assert e.value.where == "Options.set_receive_maximum"
    missing = tmp_path / "missing.pem"
    with pytest.raises(mqtt5c.InvalidArgumentError) as e:
        mqtt5c.Options().set_tls_ca_file(missing)
    assert str(missing) in e.value.text
    with pytest.raises(TypeError):
        mqtt5c.Options(no_such_setting=1)
    with pytest.raises(AttributeError):
        Properties(no_such_property=1)
    with pytest.raises(TypeError):
        Properties(content_type=b"not a str")


def test_strerror_and_version():
    assert mqtt5c.strerror(ErrorCode.TIMEOUT)
    assert mqtt5c.library_version().startswith("mqtt5c ")
    assert mqtt5c.library_version_number() > 0


def test_nul_in_a_string_is_refused_before_the_call(broker, topic):
    with mqtt5c.Client() as c:
        c.connect(broker.url)
        with pytest.raises(mqtt5c.InvalidArgumentError) as e:
            c.publish(f"{topic}/a\0b", b"x", qos=1)  # C would publish to "<topic>/a"
        assert "NUL" in e.value.text and e.value.rc == ErrorCode.INVALID_ARGUMENT
        with pytest.raises(mqtt5c.InvalidArgumentError):
            c.subscribe(f"{topic}/\0")
        with pytest.raises(mqtt5c.InvalidArgumentError):
            c.publish(f"{topic}/x", b"", properties=Properties(content_type="a\0b"))
        with pytest.raises(mqtt5c.InvalidArgumentError):
            mqtt5c.Options(client_id="a\0b")


def test_refused_publish_carries_the_reason_code(make_broker, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite ok/#\n")  # anonymous clients: ok/# only
    b = make_broker(f"acl_file {acl}\n")
    with mqtt5c.Client() as c:
        c.connect(b.url)
        for qos in (1, 2):
            with pytest.raises(mqtt5c.ReasonCodeError) as e:
                c.publish("denied/x", b"x", qos=qos)  # the PUBACK / PUBREC refuses
            assert e.value.reason_code == ReasonCode.NOT_AUTHORIZED
            assert e.value.rc == 0x87 and e.value.text, e.value.text
        assert c.publish("ok/x", b"x", qos=1) == ReasonCode.NO_MATCHING_SUBSCRIBERS  # still connected
