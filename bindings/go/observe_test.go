package mqtt5c

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

type logLine struct {
	level LogLevel
	text  string
}

// logRecorder collects a log handler's lines; waitFor waits for one that
// satisfies pred.
type logRecorder struct {
	mu    sync.Mutex
	cond  *sync.Cond
	lines []logLine
}

func newLogRecorder() *logRecorder {
	r := &logRecorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *logRecorder) handle(l LogLevel, text string) {
	r.mu.Lock()
	r.lines = append(r.lines, logLine{l, text})
	r.mu.Unlock()
	r.cond.Broadcast()
}

func (r *logRecorder) snapshot() []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logLine(nil), r.lines...)
}

func (r *logRecorder) waitFor(t *testing.T, pred func(logLine) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	timer := time.AfterFunc(wait, r.cond.Broadcast)
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for _, l := range r.lines {
			if pred(l) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such log line within %v; got %v", wait, r.lines)
		}
		r.cond.Wait()
	}
}

func TestLogHandler(t *testing.T) {
	const password = "go-secret-pw-91c2"
	b := startBroker(t, "")
	c := newClient(t, &Options{ClientID: "go-log", Username: "gouser", Password: []byte(password)})
	rec := newLogRecorder()
	if err := c.SetLogHandler(LogLevel(9), rec.handle); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("SetLogHandler(9) = %v, want ErrInvalidArgument", err)
	}
	if err := c.SetLogHandler(LogInfo, rec.handle); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(bg, b.url()); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, func(l logLine) bool { return l.level == LogInfo && strings.Contains(l.text, "connected to") })
	if err := c.Disconnect(bg); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLogHandler(LogInfo, nil); err != nil {
		t.Fatal(err)
	}
	lines := rec.snapshot()
	for _, l := range lines {
		if l.level < LogError || l.level > LogInfo {
			t.Errorf("a line at %v, above the LogInfo asked for: %q", l.level, l.text)
		}
		if strings.Contains(l.text, password) {
			t.Errorf("the password in a line: %q", l.text)
		}
	}
	// Off: a second connection logs nothing more.
	if err := c.Connect(bg, b.url()); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(bg); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.snapshot()); n != len(lines) {
		t.Fatalf("%d lines after the handler was removed", n-len(lines))
	}
}

// At LogWarning the INFO lines of a connection do not arrive. Lines come in
// order with the messages: once the client's own message arrived, the
// connection's lines had arrived before it.
func TestLogHandlerLevel(t *testing.T) {
	b := startBroker(t, "")
	got := make(chan *Message, 1)
	c := newClient(t, &Options{ClientID: "go-log-warn", OnMessage: collect(got)})
	rec := newLogRecorder()
	if err := c.SetLogHandler(LogWarning, rec.handle); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(bg, b.url()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(bg, "go/log/own", QoS1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(bg, &Message{Topic: "go/log/own", Payload: []byte("x"), QoS: QoS1}); err != nil {
		t.Fatal(err)
	}
	receive(t, got)
	for _, l := range rec.snapshot() {
		if l.level > LogWarning {
			t.Errorf("a line at %v for a LogWarning handler: %q", l.level, l.text)
		}
	}
}

func TestStats(t *testing.T) {
	b := startBroker(t, "")
	got := make(chan *Message, 8)
	c := connected(t, b, &Options{ClientID: "go-stats", OnMessage: collect(got)})
	// Not go/stats/b: received differs from sent.
	for _, f := range []string{"go/stats/a", "go/stats/c"} {
		if _, err := c.Subscribe(bg, f, QoS2, nil); err != nil {
			t.Fatal(err)
		}
	}
	before, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(30 * 8); before.Size != want || before.MessagesSent != [3]uint64{} {
		t.Fatalf("before: %+v (size want %d)", before, want)
	}
	for _, m := range []*Message{
		{Topic: "go/stats/a", Payload: []byte("12345"), QoS: QoS1},
		{Topic: "go/stats/a", Payload: []byte("6789"), QoS: QoS1},
		{Topic: "go/stats/b", Payload: []byte("xyz"), QoS: QoS0},
		{Topic: "go/stats/c", Payload: []byte("qos2!!"), QoS: QoS2},
	} {
		if _, err := c.Publish(bg, m); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		receive(t, got)
	}
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.MessagesSent != [3]uint64{1, 2, 1} || s.PayloadBytesSent != [3]uint64{3, 9, 6} {
		t.Errorf("sent %v, bytes %v; want [1 2 1], [3 9 6]", s.MessagesSent, s.PayloadBytesSent)
	}
	if s.MessagesReceived != [3]uint64{0, 2, 1} || s.PayloadBytesReceived != [3]uint64{0, 9, 6} {
		t.Errorf("received %v, bytes %v; want [0 2 1], [0 9 6]", s.MessagesReceived, s.PayloadBytesReceived)
	}
	if s.Reconnects != 0 || s.OutboundInFlight != 0 || s.QueueDropped != 0 || s.Writes == 0 {
		t.Errorf("stats %+v", s)
	}
}

func threadCount(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skipf("no /proc/self/task: %v", err)
	}
	return len(entries)
}

func TestGlobalCleanup(t *testing.T) {
	b := startBroker(t, "")
	c, err := NewClient(&Options{ClientID: "go-cleanup"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(bg, b.url()); err != nil {
		t.Fatal(err)
	}
	if err := GlobalCleanup(); !errors.Is(err, ErrBadState) {
		t.Fatalf("GlobalCleanup with a live client = %v, want ErrBadState", err)
	}
	if !c.IsConnected() {
		t.Fatal("the refused GlobalCleanup stopped the client")
	}
	withClient := threadCount(t)
	c.Close()
	if err := GlobalCleanup(); err != nil {
		t.Fatalf("GlobalCleanup after Close = %v", err)
	}
	// The library's threads are gone (the Go runtime's stay).
	if after := threadCount(t); after >= withClient {
		t.Errorf("%d threads after GlobalCleanup, %d before", after, withClient)
	}
	again := connected(t, b, &Options{ClientID: "go-after-cleanup"})
	if _, err := again.Publish(bg, &Message{Topic: "go/after", Payload: []byte("x"), QoS: QoS1}); err != nil {
		t.Fatal(err)
	}
}
