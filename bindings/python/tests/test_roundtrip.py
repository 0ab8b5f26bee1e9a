"""Messages and properties through a real mosquitto and back."""

import pytest

import mqtt5c
from mqtt5c import Event, Properties, PropertyId, QoS, ReasonCode


@pytest.fixture
def client(broker):
    with mqtt5c.Client() as c:
        c.connect(broker.url)
        yield c


@pytest.mark.parametrize("qos", list(QoS), ids=lambda q: q.name)
def test_round_trip_each_qos(client, topic, inbox, qos):
    got = inbox()
    client.on_message = got
    assert client.subscribe(f"{topic}/#", qos=qos) == qos
    payloads = [b"", b"\x00\xffbinary\x00", bytes(range(256)) * 40, "text é".encode()]
    for i, payload in enumerate(payloads):
        rc = client.publish(f"{topic}/{i}", payload, qos=qos)
        assert rc == ReasonCode.SUCCESS
    messages = got.wait(len(payloads))
    assert [m.topic for m in messages] == [f"{topic}/{i}" for i in range(len(payloads))]
    assert [m.payload for m in messages] == payloads
    assert all(isinstance(m.payload, bytes) and m.qos == qos and not m.retain for m in messages)


def test_publish_without_subscribers_is_a_success_with_its_reason_code(client, topic):
    assert client.publish(f"{topic}/nobody", b"x", qos=1) == ReasonCode.NO_MATCHING_SUBSCRIBERS


def test_properties_round_trip(client, topic, inbox):
    got = inbox()
    client.on_message = got
    client.subscribe(f"{topic}/#", qos=1, properties=Properties(subscription_identifiers=[42]))
    sent = Properties(
        content_type="application/json",
        response_topic=f"{topic}/reply",
        correlation_data=b"\x01\x02corr",
        message_expiry_interval=3600,
        payload_format_indicator=1,
        user_properties=[("key", "value"), ("key", "second"), ("ünï", "cødé")],
    )
    client.publish(f"{topic}/p", b"{}", qos=1, properties=sent)
    (m,) = got.wait(1)
    p = m.properties
    assert p.content_type == "application/json"
    assert p.response_topic == f"{topic}/reply"
    assert p.correlation_data == b"\x01\x02corr"
    assert 3590 <= p.message_expiry_interval <= 3600
    assert p.payload_format_indicator == 1
    assert p.user_properties == [("key", "value"), ("key", "second"), ("ünï", "cødé")]
    assert p.subscription_identifiers == [42]
    assert p[PropertyId.CONTENT_TYPE] == "application/json"
    # A dict works where Properties do.
    client.publish(f"{topic}/d", b"", qos=1, properties={"content_type": "text/plain"})
    assert got.wait(2)[1].properties.content_type == "text/plain"


def test_retain_and_subscribe_options(broker, client, topic, inbox):
    client.publish(f"{topic}/kept", b"retained", qos=1, retain=True)
    got = inbox()
    client.subscribe(f"{topic}/kept", qos=1, callback=got)
    (m,) = got.wait(1)
    assert (m.payload, m.retain) == (b"retained", True)
    # retain_handling 2: no retained messages; no_local: not our own publishes.
    other = inbox()
    client.subscribe(f"{topic}/#", qos=1, no_local=True, retain_handling=2, callback=other)
    client.publish(f"{topic}/kept", b"", qos=1, retain=True)  # clears it
    with mqtt5c.Client() as peer:
        peer.connect(broker.url)
        peer.publish(f"{topic}/from-peer", b"p", qos=1)
    (m,) = other.wait(1)
    assert m.topic == f"{topic}/from-peer"


def test_subscription_callback_routes_and_unsubscribe(client, topic, inbox):
    default, routed = inbox(), inbox()
    client.on_message = default
    assert client.subscribe(f"{topic}/a", qos=1, callback=routed) == QoS.AT_LEAST_ONCE
    client.subscribe(f"{topic}/b", qos=1)
    client.publish(f"{topic}/a", b"1", qos=1)
    client.publish(f"{topic}/b", b"2", qos=1)
    assert [m.payload for m in routed.wait(1)] == [b"1"]
    assert [m.payload for m in default.wait(1)] == [b"2"]
    assert client.unsubscribe(f"{topic}/a") == ReasonCode.SUCCESS
    assert client.unsubscribe(f"{topic}/a") == ReasonCode.NO_SUBSCRIPTION_EXISTED


def test_subscribe_many_and_unsubscribe_many(client, topic):
    results = client.subscribe_many([f"{topic}/x", (f"{topic}/y", 1), (f"{topic}/z", 2 | mqtt5c.SubscribeFlag.NO_LOCAL)])
    assert results == [0, 1, 2]
    assert client.unsubscribe_many([f"{topic}/x", f"{topic}/y", f"{topic}/z"]) == [0, 0, 0]


def test_publish_async_completion(client, topic, inbox):
    done = inbox()
    for qos in QoS:
        client.publish_async(f"{topic}/async", b"a", qos=qos, callback=done)
    results = done.wait(3)
    codes = [r for r, _ in results]
    # QoS 2 reports the PUBCOMP's reason (mosquitto: 0; 0x10 was on its PUBREC).
    assert codes[:2] == [ReasonCode.SUCCESS, ReasonCode.NO_MATCHING_SUBSCRIBERS]
    assert codes[2] in (ReasonCode.SUCCESS, ReasonCode.NO_MATCHING_SUBSCRIBERS)
    assert all(isinstance(p, Properties) for _, p in results)


def test_request_response(broker, topic):
    with mqtt5c.Client() as responder, mqtt5c.Client() as requester:
        responder.connect(broker.url)

        def answer(m):
            # A blocking publish from inside a callback, to the request's Response Topic.
            responder.publish(
                m.properties.response_topic,
                b"re: " + m.payload,
                properties=Properties(correlation_data=m.properties.correlation_data),
            )

        responder.subscribe(f"{topic}/service", qos=1, callback=answer)
        requester.connect(broker.url)
        response = requester.request(f"{topic}/service", b"ping", qos=1, timeout=30)
        assert response.payload == b"re: ping"
        with pytest.raises(mqtt5c.OperationTimeoutError):
            requester.request(f"{topic}/nobody-answers", b"?", timeout=0.2)


def test_will_is_published_when_the_client_closes_without_disconnect(broker, topic, inbox):
    got = inbox()
    with mqtt5c.Client() as watcher:
        watcher.on_message = got
        watcher.connect(broker.url)
        watcher.subscribe(f"{topic}/will", qos=1)
        opts = mqtt5c.Options(client_id=f"will-{topic[-12:]}")
        opts.set_will(f"{topic}/will", b"gone", qos=1, properties=Properties(content_type="text/plain"))
        with opts, mqtt5c.Client(opts) as dying:
            dying.connect(broker.url)
            dying.close()  # no DISCONNECT: the broker publishes the will
        (m,) = got.wait(1)
        assert (m.payload, m.properties.content_type) == (b"gone", "text/plain")


def test_connection_events_session_and_connack(broker, topic, inbox):
    events = inbox()
    opts = mqtt5c.Options(
        client_id=f"sess-{topic[-12:]}", clean_start=False, session_expiry=60, keep_alive=30,
        connect_properties=Properties(request_problem_information=1, user_properties=[("who", "py")]),
    )
    with opts, mqtt5c.Client(opts, on_connection=events) as c:
        with c.connect(broker.url):
            assert c.is_connected
            assert c.session_present is False  # a clean start
            assert c.client_id == f"sess-{topic[-12:]}"
            assert isinstance(c.connack_properties(), Properties)
            assert events.wait(1)[0] == (Event.CONNECTED, 0)
        assert not c.is_connected  # the Connection block disconnected
        assert events.wait(2)[1] == (Event.DISCONNECTED, 0)
        c.connect(broker.url)
        assert c.session_present is True
        assert c.stat(mqtt5c.Stat.QUEUED) == 0
        assert c.stats().queued == 0


def test_manual_ack(broker, topic, inbox):
    got = inbox()
    with mqtt5c.Client(manual_ack=True, on_message=got) as c:
        c.connect(broker.url)
        c.subscribe(f"{topic}/#", qos=1)
        c.publish(f"{topic}/m", b"x", qos=1)
        (m,) = got.wait(1)
        assert m.ack_id != 0
        c.ack(m)
        with pytest.raises(mqtt5c.BadStateError) as e:
            c.ack(m)
        assert "already" in e.value.text
