"""Test support: a private mosquitto per test session (or per test, for
special configurations), on a free loopback port, with its own config, log
and directory, as tests/common/mod.rs starts them for the Rust tests.
Never touches a broker on 1883.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

START_TIMEOUT = 10.0
START_ATTEMPTS = 3
# Generous: CI machines are slow and shared. Waits end as soon as the
# condition holds, so this costs nothing when all is well.
WAIT = 30.0


def mosquitto_path():
    if os.environ.get("MOSQUITTO"):
        return os.environ["MOSQUITTO"]
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A mosquitto process of our own; ``stop()`` kills it and removes its
    directory. ``extra_conf`` is appended to the configuration."""

    def __init__(self, extra_conf=""):
        failures = []
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start(extra_conf)
                return
            except RuntimeError as e:
                failures.append(f"--- attempt {attempt}: {e}")
        raise RuntimeError("mosquitto did not start:\n" + "\n".join(failures))

    def _start(self, extra_conf):
        self.dir = tempfile.mkdtemp(prefix="mqtt5c-py-broker-")
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "mosquitto.log")
        conf_path = os.path.join(self.dir, "mosquitto.conf")
        with open(conf_path, "w") as f:
            f.write(
                "# written by bindings/python/tests/conftest.py\n"
                f"listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence false\n"
                # as root mosquitto would switch to user mosquitto and then
                # could not write its log into our directory
                "user root\n"
                f"log_dest file {self.log_path}\n"
                "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
                "connection_messages true\nlog_timestamp true\n"
                f"{extra_conf}\n"
            )
        self.conf_path = conf_path
        self._stderr = open(os.path.join(self.dir, "mosquitto.stderr"), "w")
        self._spawn()

    def _spawn(self):
        runs_before = self.log().count(" running")
        self.proc = subprocess.Popen(
            [mosquitto_path(), "-c", self.conf_path],
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
        )
        try:
            self._wait_ready(runs_before)
        except RuntimeError as e:
            log = self.log()
            self.stop()
            raise RuntimeError(f"{e}\nmosquitto log:\n{log}") from None

    def kill(self):
        """Kills the broker: clients see the connection drop, no DISCONNECT."""
        self.proc.kill()
        self.proc.wait()

    def start_again(self):
        """Starts a killed broker again on the same port, without the old sessions."""
        self._spawn()

    def restart(self):
        self.kill()
        self.start_again()

    def _wait_ready(self, runs_before):
        # Ready: this process logged "running" (all listeners open) and the
        # port accepts. A port that accepts alone could be another process's.
        deadline = time.monotonic() + START_TIMEOUT
        delay = 0.005
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited during start-up: {self.proc.returncode}")
            if self.log().count(" running") > runs_before:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto not ready on port {self.port} within {START_TIMEOUT}s")
            time.sleep(delay)  # polling a process we do not control; no event to wait for
            delay = min(delay * 2, 0.1)

    @property
    def url(self):
        return f"mqtt://127.0.0.1:{self.port}"

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def broker():
    b = Broker()
    yield b
    b.stop()


@pytest.fixture
def make_broker():
    """Starts brokers with a configuration of the test's own."""
    started = []

    def make(extra_conf=""):
        b = Broker(extra_conf)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def topic():
    """A topic prefix of this test's own, so tests sharing a broker do not meet."""
    return f"py/{uuid.uuid4().hex[:12]}"


class Inbox:
    """Collects what a callback receives; ``wait(n)`` waits for the n-th item."""

    def __init__(self):
        self.items = []
        self._cond = threading.Condition()

    def __call__(self, *args):
        with self._cond:
            self.items.append(args[0] if len(args) == 1 else args)
            self._cond.notify_all()

    def wait(self, count=1, timeout=WAIT):
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                raise AssertionError(f"got {len(self.items)} of {count} items within {timeout}s: {self.items!r}")
            return list(self.items)

    def __len__(self):
        with self._cond:
            return len(self.items)


@pytest.fixture
def inbox():
    return Inbox
