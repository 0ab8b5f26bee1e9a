"""Callbacks: their thread, blocking calls from inside them, and closing a
client while its messages flow."""

import gc
import logging
import threading

import pytest

import mqtt5c
from mqtt5c import QoS, ReasonCode

from conftest import WAIT


@pytest.mark.parametrize("qos", [QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE], ids=lambda q: q.name)
def test_callback_publishes_from_inside_itself(broker, topic, inbox, qos):
    """Each message's callback makes a blocking publish (waiting for its
    PUBACK / PUBCOMP) while a flood of further messages arrives."""
    count = 200
    echoes = inbox()
    results = inbox()
    main_thread = threading.get_ident()
    threads = set()
    with mqtt5c.Client() as echo, mqtt5c.Client(on_message=echoes) as sink, mqtt5c.Client() as flood:

        def on_message(m):
            threads.add(threading.get_ident())
            results(echo.publish(f"{topic}/out/{m.topic.rsplit('/', 1)[1]}", m.payload, qos=qos))

        echo.on_message = on_message
        for c in (echo, sink, flood):
            c.connect(broker.url)
        echo.subscribe(f"{topic}/in/#", qos=qos)
        sink.subscribe(f"{topic}/out/#", qos=qos)
        for i in range(count):
            flood.publish_async(f"{topic}/in/{i}", str(i).encode(), qos=qos)
        got = echoes.wait(count)
        assert sorted(int(m.payload) for m in got) == list(range(count))
        # The sink may get an echo before its publish call returned: wait for those.
        assert all(r == ReasonCode.SUCCESS for r in results.wait(count))
        assert main_thread not in threads  # callbacks run on a library thread


@pytest.mark.parametrize("round_", range(5))
def test_close_while_messages_flow(broker, topic, round_):
    """close() from another thread while a flood comes in and the callback
    itself publishes: no crash, and no callback after close() returned."""
    state = {"closed": False, "late": 0, "seen": 0}
    cond = threading.Condition()
    stop = threading.Event()
    victim = mqtt5c.Client()

    def on_message(m):
        with cond:
            if state["closed"]:
                state["late"] += 1
            state["seen"] += 1
            cond.notify_all()
        try:
            victim.publish(f"{topic}/echo", m.payload, qos=1)
        except mqtt5c.MqttError:
            pass  # closed under us: the call returns an error promptly

    victim.on_message = on_message
    victim.connect(broker.url)
    victim.subscribe(f"{topic}/flood", qos=1)

    def flooder():
        with mqtt5c.Client() as f:
            f.connect(broker.url)
            i = 0
            while not stop.is_set():
                f.publish_async(f"{topic}/flood", str(i).encode(), qos=i % 3)
                i += 1

    t = threading.Thread(target=flooder)
    t.start()
    try:
        with cond:
            assert cond.wait_for(lambda: state["seen"] >= 50, WAIT), state
        victim.close()
        with cond:
            state["closed"] = True
        seen = state["seen"]
    finally:
        stop.set()
        t.join(WAIT)
    assert not t.is_alive()
    assert state["late"] == 0 and state["seen"] == seen
    with pytest.raises(mqtt5c.BadStateError):
        victim.publish(f"{topic}/x", b"")


def test_close_from_inside_own_callback(broker, topic, inbox):
    closed = inbox()
    with mqtt5c.Client() as c, mqtt5c.Client() as pub:

        def on_message(m):
            c.close()
            closed(c.closed)

        c.on_message = on_message
        c.connect(broker.url)
        c.subscribe(f"{topic}/#", qos=1)
        pub.connect(broker.url)
        for i in range(20):
            pub.publish(f"{topic}/{i}", b"x", qos=1)
        assert closed.wait(1) == [True]
        # Nothing after the close: one more round through the broker to be sure.
        pub.publish(f"{topic}/last", b"x", qos=1)
        pub.publish(f"{topic}/last", b"x", qos=1)
        assert len(closed) == 1


def test_exception_in_callback_is_logged_and_delivery_goes_on(broker, topic, inbox, caplog):
    got = inbox()

    def on_message(m):
        got(m)
        if m.payload == b"boom":
            raise RuntimeError("boom")

    with mqtt5c.Client(on_message=on_message) as c:
        c.connect(broker.url)
        c.subscribe(f"{topic}/#", qos=1)
        with caplog.at_level(logging.ERROR, logger="mqtt5c"):
            c.publish(f"{topic}/a", b"boom", qos=1)
            c.publish(f"{topic}/b", b"fine", qos=1)
            assert [m.payload for m in got.wait(2)] == [b"boom", b"fine"]
        assert any("boom" in r.getMessage() or (r.exc_info and "boom" in str(r.exc_info[1])) for r in caplog.records)


def test_replacing_and_removing_the_message_callback(broker, topic, inbox):
    first, second = inbox(), inbox()
    with mqtt5c.Client(on_message=first) as c:
        c.connect(broker.url)
        c.subscribe(f"{topic}/#", qos=1)
        c.publish(f"{topic}/1", b"1", qos=1)
        first.wait(1)
        c.on_message = second
        c.publish(f"{topic}/2", b"2", qos=1)
        assert [m.payload for m in second.wait(1)] == [b"2"]
        c.on_message = None
        barrier = inbox()
        c.subscribe(f"{topic}-barrier", qos=1, callback=barrier)
        c.publish(f"{topic}/3", b"3", qos=1)
        # Delivered in order: once the barrier's callback ran, message 3 has
        # been dealt with (nobody to receive it).
        c.publish(f"{topic}-barrier", b"", qos=1)
        barrier.wait(1)
        c.on_message = second
        c.publish(f"{topic}/4", b"4", qos=1)
        assert [m.payload for m in second.wait(2)] == [b"2", b"4"]
        assert len(first) == 1


def test_garbage_collected_clients_with_callbacks(broker, topic, inbox):
    """Clients dropped without close() while their messages come in, half in
    reference cycles with their callbacks (collected by gc.collect(), or,
    when a callback of the client runs at that moment, by a later
    collection), half not (freed when the last reference goes, possibly on
    the library's thread as a callback returns): no crash, and the clients
    made afterwards work."""
    got = inbox()
    with mqtt5c.Client() as pub:
        pub.connect(broker.url)
        for i in range(20):
            c = mqtt5c.Client()
            if i % 2:
                c.on_message = lambda m, c=c: got(m)  # a cycle: client -> callback -> client
            else:
                c.on_message = got
            c.connect(broker.url)
            c.subscribe(f"{topic}/#", qos=1)
            for _ in range(5):
                pub.publish_async(f"{topic}/{i}", b"x", qos=1)
            del c
            gc.collect()
        got.wait(1)
        gc.collect()
        fresh = inbox()
        with mqtt5c.Client(on_message=fresh) as c:
            c.connect(broker.url)
            c.subscribe(f"{topic}/fresh", qos=1)
            pub.publish(f"{topic}/fresh", b"ok", qos=1)
            assert [m.payload for m in fresh.wait(1)] == [b"ok"]


def test_interpreter_exit_with_open_clients_while_messages_flow(broker, topic):
    """A program that ends without closing its clients, while their
    callbacks run: the atexit hook closes them; the process exits cleanly."""
    import subprocess
    import sys
    import textwrap

    program = textwrap.dedent(f"""
        import threading, mqtt5c
        seen = threading.Event()
        sub = mqtt5c.Client(on_message=lambda m: (seen.set(), pub.publish("{topic}/echo", m.payload, qos=1)))
        pub = mqtt5c.Client()
        for c in (sub, pub):
            c.connect("{broker.url}")
        sub.subscribe("{topic}/in", qos=1)
        for i in range(500):
            pub.publish_async("{topic}/in", str(i).encode(), qos=1)
        assert seen.wait(30)
        print("exiting")
    """)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=WAIT * 2)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "exiting"


def test_dropping_the_last_reference_does_not_wait_for_callbacks(broker, topic):
    """A client collected while its subscription callback waits for a lock
    that the thread dropping the last reference holds: freeing it there
    would wait for that callback, a deadlock. The free happens on a thread
    of its own instead. Run in a subprocess so a deadlock fails the test
    (by its timeout) rather than hanging the suite."""
    import subprocess
    import sys
    import textwrap

    program = textwrap.dedent(f"""
        import gc, threading, mqtt5c
        lock, entered = threading.Lock(), threading.Event()

        def route(m):
            entered.set()
            with lock:
                pass

        c = mqtt5c.Client()
        c.connect("{broker.url}")
        c.subscribe("{topic}/routed", qos=1, callback=route)
        with mqtt5c.Client() as pub:
            pub.connect("{broker.url}")
            with lock:
                pub.publish("{topic}/routed", b"x", qos=1)
                assert entered.wait(30)
                del c  # the last reference, while route() waits for the lock
                gc.collect()
        print("done")
    """)
    try:
        out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=WAIT)
    except subprocess.TimeoutExpired:
        pytest.fail("deadlock: dropping the client waited for its callback, which waited for our lock")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done"
