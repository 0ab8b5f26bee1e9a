package mqtt5c

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// broker is a mosquitto of the test's own, on a free loopback port, with
// its own config and log in a temporary directory (the configuration of
// tests/common/mod.rs in the Rust tests). Never the shared one on 1883.
type broker struct {
	t      *testing.T
	dir    string
	port   int
	conf   string
	log    string
	cmd    *exec.Cmd
	exited chan error
}

func (b *broker) url() string { return fmt.Sprintf("mqtt://127.0.0.1:%d", b.port) }

func mosquittoPath() string {
	if p := os.Getenv("MOSQUITTO"); p != "" {
		return p
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	return "/usr/sbin/mosquitto" // Debian's, not on a non-root PATH
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen 127.0.0.1:0: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startBroker starts mosquitto with extraConf appended to the test
// configuration, and stops it when the test ends. The port may be taken
// between freePort and mosquitto's bind: then it tries again.
func startBroker(t *testing.T, extraConf string) *broker {
	t.Helper()
	var failures []string
	for attempt := 1; attempt <= 3; attempt++ {
		b := &broker{t: t, dir: t.TempDir(), port: freePort(t)}
		b.log = filepath.Join(b.dir, "mosquitto.log")
		b.conf = filepath.Join(b.dir, "mosquitto.conf")
		conf := fmt.Sprintf(`# written by bindings/go/broker_test.go
listener %d 127.0.0.1
allow_anonymous true
persistence false
# as root mosquitto would switch to user mosquitto, which cannot write here
user root
log_dest file %s
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
%s
`, b.port, b.log, extraConf)
		if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		err := b.start()
		if err == nil {
			t.Cleanup(b.stop)
			return b
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %v", attempt, err))
	}
	t.Fatalf("mosquitto did not start:\n%s", strings.Join(failures, "\n"))
	return nil
}

func (b *broker) runsLogged() int {
	text, _ := os.ReadFile(b.log)
	return strings.Count(string(text), " running")
}

// start spawns mosquitto and waits until it is ready: this process
// logged "running" (all listeners open) and the port accepts. A port that
// only accepts could be someone else's.
func (b *broker) start() error {
	runsBefore := b.runsLogged()
	stderr, err := os.OpenFile(filepath.Join(b.dir, "mosquitto.stderr"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer stderr.Close()
	b.cmd = exec.Command(mosquittoPath(), "-c", b.conf)
	b.cmd.Stderr = stderr
	if err := b.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", mosquittoPath(), err)
	}
	b.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(b.cmd, b.exited)
	deadline := time.Now().Add(10 * time.Second)
	for backoff := 5 * time.Millisecond; ; backoff = minDuration(2*backoff, 200*time.Millisecond) {
		select {
		case err := <-b.exited:
			b.exited <- err
			errText, _ := os.ReadFile(stderr.Name())
			return fmt.Errorf("mosquitto exited during start-up: %v\n%s", err, errText)
		default:
		}
		if b.runsLogged() > runsBefore {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.port), time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			b.stop()
			logText, _ := os.ReadFile(b.log)
			return fmt.Errorf("mosquitto did not log 'running' with port %d accepting within 10s\n%s", b.port, logText)
		}
		time.Sleep(backoff) // another process's start-up: no event to wait for
	}
}

// stop kills the broker and reaps it; restart brings it back on the same
// port with the same configuration.
func (b *broker) stop() {
	if b.cmd != nil {
		_ = b.cmd.Process.Kill()
		<-b.exited
		b.cmd = nil
	}
}

func (b *broker) restart() {
	b.t.Helper()
	b.stop()
	if err := b.start(); err != nil {
		b.t.Fatalf("mosquitto did not restart: %v", err)
	}
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

// tlsFiles makes, with openssl(1) in dir, a CA, a server certificate
// for 127.0.0.1 and localhost, and a client certificate (mutual TLS).
type tlsFiles struct{ ca, cert, key, clientCert, clientKey string }

func makeCerts(t *testing.T, dir string) tlsFiles {
	t.Helper()
	f := tlsFiles{filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"),
		filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")}
	ext := filepath.Join(dir, "ext.cnf")
	if err := os.WriteFile(ext, []byte("subjectAltName=DNS:localhost,IP:127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clientExt := filepath.Join(dir, "client-ext.cnf") // v3, as rustls wants
	if err := os.WriteFile(clientExt, []byte("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	caKey := filepath.Join(dir, "ca.key")
	csr := filepath.Join(dir, "server.csr")
	clientCsr := filepath.Join(dir, "client.csr")
	ec := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"}
	for _, args := range [][]string{
		append(append([]string{"req", "-x509"}, ec...), "-keyout", caKey, "-out", f.ca, "-days", "2", "-subj", "/CN=mqtt5c go test CA"),
		append(append([]string{"req"}, ec...), "-keyout", f.key, "-out", csr, "-subj", "/CN=localhost"),
		{"x509", "-req", "-in", csr, "-CA", f.ca, "-CAkey", caKey, "-CAcreateserial", "-out", f.cert, "-days", "2", "-extfile", ext},
		append(append([]string{"req"}, ec...), "-keyout", f.clientKey, "-out", clientCsr, "-subj", "/CN=go-client"),
		{"x509", "-req", "-in", clientCsr, "-CA", f.ca, "-CAkey", caKey, "-CAcreateserial", "-out", f.clientCert, "-days", "2", "-extfile", clientExt},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	return f
}
