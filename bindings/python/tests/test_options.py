"""Options the other tests do not use: enhanced auth, persistence, the
offline queue while the broker is down, the runtime's threads."""

import pytest

import mqtt5c
from mqtt5c import ReasonCode


def test_enhanced_auth_method_unknown_to_the_broker(broker):
    # mosquitto knows no enhanced authentication without a plugin: it refuses.
    with mqtt5c.Options(auth=("SCRAM-SHA-256", b"client-first")) as opts, mqtt5c.Client(opts) as c:
        c.on_auth = lambda reason_code, method, data: b"never asked"
        with pytest.raises(mqtt5c.ReasonCodeError) as e:
            c.connect(broker.url)
    assert e.value.reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD


def test_persistence_store_is_one_client_at_a_time(tmp_path):
    with mqtt5c.Options(client_id="py-persist", persistence_dir=tmp_path / "store") as opts:
        with mqtt5c.Client(opts):
            with pytest.raises(mqtt5c.PersistenceError) as e:
                mqtt5c.Client(opts)
            assert "store" in e.value.text, e.value.text
        with mqtt5c.Client(opts):
            pass  # released by close()


def test_offline_queue_while_the_broker_is_down(make_broker, topic, inbox):
    broker = make_broker()
    done = inbox()
    opts = mqtt5c.Options(auto_reconnect=(20, 200), offline_queue=(100, 1 << 20, mqtt5c.QueuePolicy.FAIL_NEW))
    with opts, mqtt5c.Client(opts) as c:
        c.connect(broker.url)
        broker.kill()
        # Queued while the client reconnects; completed once it is back.
        for i in range(3):
            c.publish_async(f"{topic}/{i}", b"queued", qos=1, callback=done)
        broker.start_again()
        results = done.wait(3)
    assert [r for r, _ in results] == [ReasonCode.NO_MATCHING_SUBSCRIBERS] * 3


def test_global_init_after_a_client_exists_is_a_bad_state():
    with mqtt5c.Client():
        with pytest.raises(mqtt5c.BadStateError) as e:
            mqtt5c.global_init(2)
    assert e.value.text


@pytest.mark.parametrize("version", [mqtt5c.ProtocolVersion.V311, mqtt5c.ProtocolVersion.AUTO])
def test_protocol_version(broker, topic, inbox, version):
    got = inbox()
    with mqtt5c.Options(protocol_version=version) as opts, mqtt5c.Client(opts, on_message=got) as c:
        with pytest.raises(mqtt5c.NotConnectedError):
            c.protocol_version
        c.connect(broker.url)
        # AUTO: mosquitto speaks v5, so v5 it is.
        expected = mqtt5c.ProtocolVersion.V311 if version == mqtt5c.ProtocolVersion.V311 else mqtt5c.ProtocolVersion.V5
        assert c.protocol_version == expected
        c.subscribe(f"{topic}/#", qos=1)
        c.publish(f"{topic}/x", b"v", qos=1)
        assert [m.payload for m in got.wait(1)] == [b"v"]
        if expected == mqtt5c.ProtocolVersion.V311:
            with pytest.raises(mqtt5c.InvalidArgumentError) as e:
                c.publish(f"{topic}/x", b"", properties=mqtt5c.Properties(content_type="a"))
            assert e.value.text
