"""Logging (Client.set_logging), counters (Client.stats) and
mqtt5c.global_cleanup against the suite's mosquitto."""

import logging
import subprocess
import sys
import textwrap
import threading

import mqtt5c
from mqtt5c import LogLevel, QoS

WAIT = 30.0
PASSWORD = "py-secret-pw-7f3a"


class Lines:
    """Collects (level, line) pairs from a log callback; ``wait_for(pred)``
    waits until a line satisfies ``pred``."""

    def __init__(self):
        self.items = []
        self.threads = set()
        self._cond = threading.Condition()

    def __call__(self, level, line):
        with self._cond:
            self.items.append((level, line))
            self.threads.add(threading.get_ident())
            self._cond.notify_all()

    def wait_for(self, pred):
        with self._cond:
            assert self._cond.wait_for(lambda: any(pred(lv, ln) for lv, ln in self.items), WAIT), self.items
            return list(self.items)


def test_log_callback_levels_and_no_password(broker, topic):
    lines = Lines()
    with mqtt5c.Client(client_id=f"log-{topic[-12:]}", credentials=("pyuser", PASSWORD)) as c:
        c.set_logging(LogLevel.INFO, callback=lines)
        c.connect(broker.url)
        got = lines.wait_for(lambda lv, ln: lv == LogLevel.INFO and "connected to" in ln)
        assert threading.get_ident() not in lines.threads  # a library thread, not ours
        c.disconnect()
        c.set_logging(None)  # off: nothing more arrives
        before = len(lines.items)
        c.connect(broker.url)
        c.disconnect()
        assert len(lines.items) == before
    assert got
    for level, line in got:
        assert isinstance(level, LogLevel)
        assert LogLevel.ERROR <= level <= LogLevel.INFO, (level, line)  # nothing more verbose than asked
        assert PASSWORD not in line


def test_log_callback_gets_nothing_above_its_level(broker, topic, inbox):
    """At WARNING, the INFO lines of a connection do not arrive. Lines come
    in order with the messages: once the client's own message arrived, the
    connection's lines had arrived before it."""
    lines = Lines()
    got = inbox()
    with mqtt5c.Client(on_message=got) as c:
        c.set_logging(LogLevel.WARNING, callback=lines)
        c.connect(broker.url)
        c.subscribe(f"{topic}/own", qos=1)
        c.publish(f"{topic}/own", b"x", qos=1)
        got.wait(1)
        c.disconnect()
    assert all(level <= LogLevel.WARNING for level, _ in lines.items), lines.items


def test_log_lines_reach_the_logging_module_by_default(broker, topic, caplog):
    caplog.set_level(logging.DEBUG, logger="mqtt5c.client")
    seen = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record):
            if "connected to" in record.getMessage():
                seen.set()

    watch = Watch()
    logging.getLogger("mqtt5c.client").addHandler(watch)
    try:
        with mqtt5c.Client(credentials=("pyuser", PASSWORD)) as c:
            c.set_logging(LogLevel.DEBUG)
            c.connect(broker.url)
            assert seen.wait(WAIT)
            c.disconnect()
    finally:
        logging.getLogger("mqtt5c.client").removeHandler(watch)
    records = [r for r in caplog.records if r.name == "mqtt5c.client"]
    assert any(r.levelno == logging.INFO and "connected to" in r.getMessage() for r in records)
    assert all(PASSWORD not in r.getMessage() for r in records)


def test_set_logging_refuses_a_bad_level(broker):
    with mqtt5c.Client() as c:
        try:
            c.set_logging(7)
        except ValueError:
            pass
        else:
            raise AssertionError("level 7 accepted")


def test_stats_count_the_test_traffic(broker, topic, inbox):
    got = inbox()
    with mqtt5c.Client(on_message=got) as c:
        c.connect(broker.url)
        c.subscribe(f"{topic}/a", qos=2)
        c.subscribe(f"{topic}/c", qos=2)  # not /b: received differs from sent
        before = c.stats()
        assert before.size == ctypes_size()
        assert before.messages_sent == (0, 0, 0)
        c.publish(f"{topic}/a", b"12345", qos=QoS.AT_LEAST_ONCE)
        c.publish(f"{topic}/a", b"6789", qos=QoS.AT_LEAST_ONCE)
        c.publish(f"{topic}/b", b"xyz", qos=QoS.AT_MOST_ONCE)
        c.publish(f"{topic}/c", b"qos2!!", qos=QoS.EXACTLY_ONCE)
        got.wait(3)
        s = c.stats()
        assert isinstance(s, mqtt5c.Stats)
        assert s.messages_sent == (1, 2, 1)
        assert s.payload_bytes_sent == (3, 9, 6)
        # Each arrives at the lower of its publish QoS and the subscription's (2).
        assert s.messages_received == (0, 2, 1)
        assert s.payload_bytes_received == (0, 9, 6)
        assert s.reconnects == 0 and s.queue_dropped == 0 and s.log_dropped == 0
        assert s.outbound_in_flight == 0
        assert s.writes > 0


def ctypes_size():
    import ctypes

    from mqtt5c import _lib

    return ctypes.sizeof(_lib.Stats)


def test_global_cleanup_refuses_while_a_client_lives_and_works_after(broker, topic):
    """In a process of its own: the suite's other clients (some left to the
    garbage collector) must not count."""
    program = textwrap.dedent(f"""
        import mqtt5c
        c = mqtt5c.Client()
        c.connect("{broker.url}")
        try:
            mqtt5c.global_cleanup()
        except mqtt5c.BadStateError as e:
            print("refused", "global_cleanup" in str(e))
        assert c.is_connected
        c.disconnect()
        c.close()
        mqtt5c.global_cleanup()
        print("cleaned")
        with mqtt5c.Client() as again:
            again.connect("{broker.url}")
            again.publish("{topic}/after", b"x", qos=1)
            print("again", again.stats().messages_sent)
        mqtt5c.global_cleanup()
        import os
        print("threads", len(os.listdir("/proc/self/task")))
    """)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=WAIT * 2)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:4] == ["refused True", "cleaned", "again (0, 1, 0)", "threads 1"], out.stdout
