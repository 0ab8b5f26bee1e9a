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
	cmd  *exec.Cmd
	port int
	log  string
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
		b, err := tryStartBroker(t, extraConf)
		if err == nil {
			return b
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %v", attempt, err))
	}
	t.Fatalf("mosquitto did not start:\n%s", strings.Join(failures, "\n"))
	return nil
}

func tryStartBroker(t *testing.T, extraConf string) (*broker, error) {
	dir := t.TempDir()
	b := &broker{port: freePort(t), log: filepath.Join(dir, "mosquitto.log")}
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
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	stderr, err := os.Create(filepath.Join(dir, "mosquitto.stderr"))
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	b.cmd = exec.Command(mosquittoPath(), "-c", confPath)
	b.cmd.Stderr = stderr
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", mosquittoPath(), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- b.cmd.Wait() }()
	stop := func() {
		_ = b.cmd.Process.Kill()
		<-exited
	}
	// Ready: this process logged "running" (all listeners open) and the
	// port accepts. A port that only accepts could be someone else's.
	deadline := time.Now().Add(10 * time.Second)
	for backoff := 5 * time.Millisecond; ; backoff = min(2*backoff, 200*time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			stop()
			errText, _ := os.ReadFile(stderr.Name())
			return nil, fmt.Errorf("mosquitto exited during start-up: %v\n%s", err, errText)
		default:
		}
		logText, _ := os.ReadFile(b.log)
		if strings.Contains(string(logText), " running") {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.port), time.Second); err == nil {
				c.Close()
				t.Cleanup(stop)
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("mosquitto did not log 'running' with port %d accepting within 10s\n%s", b.port, logText)
		}
		time.Sleep(backoff) // polling for another process's start-up: no event to wait for
	}
}

func min(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
