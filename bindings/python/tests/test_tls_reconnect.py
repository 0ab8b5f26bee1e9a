"""TLS options, automatic reconnection, the pre-connect callback, and how
the package finds the library."""

import os
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

import mqtt5c
from mqtt5c import Event, QoS

from conftest import free_port


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 / localhost and a client
    certificate, made with the openssl command (scripts/ensure-deps.sh)."""
    d = tmp_path_factory.mktemp("certs")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=mqtt5c python test CA", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    # An EC P-256 client key too, for the external signer.
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "client-ec.key", cwd=d)
    for name, ext, newkey in (("server", "server.ext", ["-newkey", "rsa:2048", "-keyout", "server.key"]),
                              ("client", "client.ext", ["-newkey", "rsa:2048", "-keyout", "client.key"]),
                              ("client-ec", "client.ext", ["-key", "client-ec.key"])):
        openssl("req", "-new", *newkey, "-nodes", "-out", f"{name}.csr",
                "-subj", f"/CN={'localhost' if name == 'server' else 'py-client'}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", ext, cwd=d)
    return d


@pytest.fixture
def tls_broker(make_broker, certs):
    """A broker with a TLS listener (tls_port) and a mutual-TLS one (mtls_port)."""
    tls_port, mtls_port = free_port(), free_port()
    b = make_broker(
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {certs}/ca.pem\ncertfile {certs}/server.pem\nkeyfile {certs}/server.key\n"
        f"listener {mtls_port} 127.0.0.1\n"
        f"cafile {certs}/ca.pem\ncertfile {certs}/server.pem\nkeyfile {certs}/server.key\n"
        "require_certificate true\n"
    )
    b.tls_port, b.mtls_port = tls_port, mtls_port
    return b


def test_tls_round_trip_with_ca_and_server_name(tls_broker, certs, topic, inbox):
    got = inbox()
    opts = mqtt5c.Options().set_tls(ca_file=certs / "ca.pem", server_name="localhost")
    with opts, mqtt5c.Client(opts, on_message=got) as c:
        c.connect(f"mqtts://127.0.0.1:{tls_broker.tls_port}")
        c.subscribe(f"{topic}/#", qos=2)
        c.publish(f"{topic}/secure", b"over tls", qos=2)
        assert [m.payload for m in got.wait(1)] == [b"over tls"]


def test_tls_unknown_issuer_raises_tls_error(tls_broker):
    with mqtt5c.Client() as c:  # the system trust store does not know our CA
        with pytest.raises(mqtt5c.TLSError) as e:
            c.connect(f"mqtts://127.0.0.1:{tls_broker.tls_port}")
    assert e.value.rc == mqtt5c.ErrorCode.TLS
    assert e.value.text


def test_mutual_tls(tls_broker, certs):
    url = f"mqtts://127.0.0.1:{tls_broker.mtls_port}"
    with mqtt5c.Options(tls_ca_file=certs / "ca.pem") as opts, mqtt5c.Client(opts) as c:
        with pytest.raises(mqtt5c.MqttError):  # no client certificate: refused
            c.connect(url)
    opts = mqtt5c.Options(tls_ca_file=certs / "ca.pem",
                          tls_client_cert=(certs / "client.pem", certs / "client.key"))
    with opts, mqtt5c.Client(opts) as c:
        c.connect(url)
        assert c.is_connected


def test_tls_from_pem_buffers(tls_broker, certs, topic, inbox):
    opts = mqtt5c.Options()
    opts.set_tls_ca_pem((certs / "ca.pem").read_bytes())
    opts.set_tls_client_cert_pem((certs / "client.pem").read_text(), (certs / "client.key").read_bytes())
    with opts, mqtt5c.Client(opts) as c:
        c.connect(f"mqtts://127.0.0.1:{tls_broker.mtls_port}")
        assert c.publish(f"{topic}/x", b"", qos=1) == mqtt5c.ReasonCode.NO_MATCHING_SUBSCRIBERS
    with pytest.raises(mqtt5c.InvalidArgumentError) as e:
        mqtt5c.Options().set_tls_ca_pem(b"not a certificate")
    assert e.value.text


def test_tls_client_signer_keeps_the_key_outside(tls_broker, certs):
    """The handshake's signature comes from a Python callable (here the
    openssl command, standing in for a TPM or a token)."""
    schemes = []

    def sign(scheme, message):
        schemes.append(scheme)
        if scheme != 0x0403:  # ecdsa_secp256r1_sha256
            raise ValueError(f"scheme 0x{scheme:04x} not offered by this key")
        out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(certs / "client-ec.key")],
                             input=message, capture_output=True, check=True)
        return out.stdout  # DER, as the library wants

    opts = mqtt5c.Options(tls_ca_file=certs / "ca.pem")
    opts.set_tls_client_signer((certs / "client-ec.pem").read_bytes(), mqtt5c.TlsKeyType.ECDSA_P256, sign)
    with opts, mqtt5c.Client(opts) as c:
        c.connect(f"mqtts://127.0.0.1:{tls_broker.mtls_port}")
        assert c.is_connected
    assert schemes == [0x0403]

    def failing(scheme, message):
        raise RuntimeError("token removed")

    opts = mqtt5c.Options(tls_ca_file=certs / "ca.pem")
    opts.set_tls_client_signer((certs / "client-ec.pem").read_bytes(), mqtt5c.TlsKeyType.ECDSA_P256, failing)
    with opts, mqtt5c.Client(opts) as c:
        with pytest.raises(mqtt5c.MqttError):
            c.connect(f"mqtts://127.0.0.1:{tls_broker.mtls_port}")


def test_http_connect_proxy(broker, topic, inbox):
    """set_proxy: the connection goes through an HTTP CONNECT proxy (a
    minimal one here, that records the CONNECT line it got)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    requests = []

    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        conn, _ = listener.accept()
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        requests.append(head.split(b"\r\n", 1)[0].decode())
        upstream = socket.create_connection(("127.0.0.1", broker.port))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
        pipe(conn, upstream)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    got = inbox()
    opts = mqtt5c.Options(proxy=f"http://127.0.0.1:{listener.getsockname()[1]}")
    with opts, mqtt5c.Client(opts, on_message=got) as c:
        c.connect(broker.url)
        c.subscribe(f"{topic}/#", qos=1)
        c.publish(f"{topic}/via-proxy", b"tunnelled", qos=1)
        assert [m.payload for m in got.wait(1)] == [b"tunnelled"]
    listener.close()
    assert requests == [f"CONNECT 127.0.0.1:{broker.port} HTTP/1.1"]
    with pytest.raises(mqtt5c.InvalidArgumentError):
        mqtt5c.Options(proxy="ftp://nope")


def test_reconnects_after_a_broker_restart(make_broker, topic, inbox):
    """Automatic reconnection: the loss, the attempts and the reconnect are
    reported; the subscription is made again on the new session; a QoS 1
    publish made after the restart goes through."""
    broker = make_broker()
    events, got = inbox(), inbox()
    opts = mqtt5c.Options(auto_reconnect=(20, 200), keep_alive=5, operation_timeout=30000)
    with opts, mqtt5c.Client(opts, on_connection=events, on_message=got) as c:
        c.connect(broker.url)
        c.subscribe(f"{topic}/#", qos=1)
        events.wait(1)
        broker.restart()

        def reconnected():
            return any(e == Event.CONNECTED for e, _ in events.items[1:])

        with events._cond:
            assert events._cond.wait_for(reconnected, 30), events.items
        kinds = [e for e, _ in events.items]
        assert kinds[0] == Event.CONNECTED and kinds[1] == Event.DISCONNECTED
        # Killed: no DISCONNECT, the socket closed (or a network error).
        assert events.items[1][1] in (mqtt5c.ErrorCode.CONNECTION_LOST, mqtt5c.ErrorCode.IO), events.items
        attempts = [d for e, d in events.items if e == Event.RECONNECTING]
        assert attempts and attempts[0] == 1 and type(attempts[0]) is int
        assert c.publish(f"{topic}/after", b"again", qos=QoS.AT_LEAST_ONCE) == 0
        assert [m.payload for m in got.wait(1)] == [b"again"]


def test_pre_connect_callback_sets_credentials_and_can_skip(make_broker, tmp_path):
    broker = make_broker()
    seen = []

    def pre_connect(url, attempt, options):
        seen.append((url, attempt))
        if len(seen) == 1:
            return False  # skip the first attempt
        options.set_credentials("py-user", b"secret")
        return True

    with mqtt5c.Client(on_pre_connect=pre_connect) as c:
        with pytest.raises(mqtt5c.NotConnectedError) as e:
            c.connect(broker.url)
        assert "skip" in e.value.text.lower(), e.value.text
        c.connect(broker.url)
        assert c.is_connected
    assert [a for _, a in seen] == [1, 1]
    assert seen[0][0].startswith("mqtt://127.0.0.1:")
    assert "py-user" in broker.log()


def _import_in_subprocess(env):
    code = "import mqtt5c; print(mqtt5c.library_path())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_library_from_pkg_config(tmp_path):
    libdir = os.path.dirname(os.environ["MQTT5C_LIBRARY"])
    (tmp_path / "mqtt5c.pc").write_text(textwrap.dedent(f"""\
        prefix={tmp_path}
        libdir={libdir}
        Name: mqtt5c
        Description: test
        Version: 0.1.0
        Libs: -L${{libdir}} -lmqtt5c
        """))
    env = {k: v for k, v in os.environ.items() if k not in ("MQTT5C_LIBRARY", "LD_LIBRARY_PATH")}
    env["PKG_CONFIG_PATH"] = str(tmp_path)
    out = _import_in_subprocess(env)
    if out.returncode == 0 and not out.stdout.strip().startswith(libdir):
        pytest.skip(f"an installed libmqtt5c came first: {out.stdout.strip()}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == os.path.join(libdir, "libmqtt5c.so")


def test_bad_library_path_is_an_import_error_that_says_what_to_do(tmp_path):
    env = dict(os.environ, MQTT5C_LIBRARY=str(tmp_path / "nope.so"))
    out = _import_in_subprocess(env)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and "MQTT5C_LIBRARY" in out.stderr and "nope.so" in out.stderr
