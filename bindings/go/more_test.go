package mqtt5c

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestPublishAsync(t *testing.T) {
	b := startBroker(t, "")
	got := make(chan *Message, 3)
	sub := connected(t, b, &Options{OnMessage: collect(got)})
	if _, err := sub.Subscribe(bg, "go/async", QoS2, nil); err != nil {
		t.Fatal(err)
	}
	pub := connected(t, b, nil)
	type outcome struct {
		rc  ReasonCode
		err error
	}
	done := make(chan outcome, 3)
	for _, qos := range []QoS{QoS0, QoS1, QoS2} {
		err := pub.PublishAsync(&Message{Topic: "go/async", Payload: []byte{byte(qos)}, QoS: qos},
			func(rc ReasonCode, err error) { done <- outcome{rc, err} })
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		select {
		case o := <-done:
			if o.err != nil || o.rc != ReasonSuccess {
				t.Fatalf("completion %d: %v, %v", i, o.rc, o.err)
			}
		case <-time.After(wait):
			t.Fatal("no completion")
		}
		receive(t, got)
	}
	err := pub.PublishAsync(&Message{Topic: "go/#"}, nil)
	expectError(t, err, ErrInvalidArgument, "go/#")
}

func TestRequestResponse(t *testing.T) {
	b := startBroker(t, "")
	responder := connected(t, b, nil)
	_, err := responder.Subscribe(bg, "go/service", QoS1, func(m *Message) {
		responder.Publish(bg, &Message{Topic: m.Properties.ResponseTopic, Payload: append([]byte("re: "), m.Payload...),
			QoS: QoS1, Properties: Properties{CorrelationData: m.Properties.CorrelationData}})
	})
	if err != nil {
		t.Fatal(err)
	}
	c := connected(t, b, nil)
	for i := 0; i < 3; i++ {
		resp, err := c.Request(bg, &Message{Topic: "go/service", Payload: []byte(fmt.Sprint(i)), QoS: QoS1}, wait)
		if err != nil || string(resp.Payload) != fmt.Sprintf("re: %d", i) {
			t.Fatalf("Request %d: %v, %+v", i, err, resp)
		}
	}
	_, err = c.Request(bg, &Message{Topic: "go/nobody", QoS: QoS1}, 100*time.Millisecond)
	expectError(t, err, ErrTimeout, "")
}

// With manual acknowledgement a message not acked is sent again to the
// next client that resumes the session; one acked is not.
func TestManualAck(t *testing.T) {
	b := startBroker(t, "")
	opts := func(got chan *Message) *Options {
		return &Options{ClientID: "go-manual", ResumeSession: true, SessionExpiry: time.Hour, ManualAck: true, OnMessage: collect(got)}
	}
	got := make(chan *Message, 4)
	c := connected(t, b, opts(got))
	if _, err := c.Subscribe(bg, "go/ack", QoS1, nil); err != nil {
		t.Fatal(err)
	}
	pub := connected(t, b, nil)
	for _, p := range []string{"acked", "not acked"} {
		if _, err := pub.Publish(bg, &Message{Topic: "go/ack", Payload: []byte(p), QoS: QoS1}); err != nil {
			t.Fatal(err)
		}
	}
	first, second := receive(t, got), receive(t, got)
	if first.AckID == 0 || second.AckID == 0 {
		t.Fatalf("ack ids %d, %d", first.AckID, second.AckID)
	}
	if err := c.Ack(first, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(first, 0); !errors.Is(err, ErrBadState) {
		t.Fatalf("second Ack: %v", err)
	}
	// A clean end: our PUBACK goes out with the DISCONNECT.
	if err := c.Disconnect(bg); err != nil {
		t.Fatal(err)
	}
	c.Close()
	got2 := make(chan *Message, 4)
	c2 := connected(t, b, opts(got2))
	if !c2.SessionPresent() {
		t.Fatal("session not resumed")
	}
	if m := receive(t, got2); string(m.Payload) != "not acked" {
		t.Fatalf("resent %q", m.Payload)
	}
}

func TestClientInfo(t *testing.T) {
	b := startBroker(t, "")
	c := connected(t, b, &Options{ConnectUserProperties: []UserProperty{{"app", "go"}}})
	if id := c.ClientID(); id == "" {
		t.Fatal("no assigned client id")
	}
	p := c.ConnackProperties()
	if p == nil || p.AssignedClientID != c.ClientID() {
		t.Fatalf("CONNACK properties %+v, client id %q", p, c.ClientID())
	}
	if c.SessionPresent() || !c.IsConnected() || c.DisconnectProperties() != nil {
		t.Fatal("fresh session, connected, no DISCONNECT from the broker")
	}
	if v := Version(); v == "" {
		t.Fatal("no version")
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certs := makeCerts(t, dir)
	tlsPort, mutualPort := freePort(t), freePort(t)
	startBroker(t, fmt.Sprintf("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\n"+
		"listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\ncafile %s\nrequire_certificate true\n",
		tlsPort, certs.cert, certs.key, mutualPort, certs.cert, certs.key, certs.ca))
	url := fmt.Sprintf("mqtts://127.0.0.1:%d", tlsPort)
	mutualURL := fmt.Sprintf("mqtts://127.0.0.1:%d", mutualPort)

	got := make(chan *Message, 1)
	c := newClient(t, &Options{TLS: &TLS{CAFile: certs.ca, ServerName: "localhost"}, OnMessage: collect(got)})
	if err := c.Connect(bg, url); err != nil {
		t.Fatalf("Connect over TLS: %v", err)
	}
	if _, err := c.Subscribe(bg, "go/tls", QoS1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(bg, &Message{Topic: "go/tls", Payload: []byte("secret"), QoS: QoS1}); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, got); string(m.Payload) != "secret" {
		t.Fatalf("over TLS: %+v", m)
	}

	// The system's trust store does not know our CA.
	err := newClient(t, nil).Connect(bg, url)
	expectError(t, err, ErrTLS, "")

	// Test rigs only: no verification at all.
	if err := newClient(t, &Options{TLS: &TLS{InsecureSkipVerify: true}}).Connect(bg, url); err != nil {
		t.Fatalf("InsecureSkipVerify: %v", err)
	}

	// Mutual TLS: our certificate, signed by the CA the broker trusts.
	mutual := &TLS{CAFile: certs.ca, ServerName: "localhost", CertFile: certs.clientCert, KeyFile: certs.clientKey}
	if err := newClient(t, &Options{TLS: mutual}).Connect(bg, mutualURL); err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}
	// Without one the broker's TLS alert says why.
	err = newClient(t, &Options{TLS: &TLS{CAFile: certs.ca, ServerName: "localhost"}}).Connect(bg, mutualURL)
	expectError(t, err, ErrTLS, "client certificate")

	_, err = NewClient(&Options{TLS: &TLS{CertFile: certs.cert, KeyFile: filepath.Join(dir, "missing.key")}})
	expectError(t, err, ErrInvalidArgument, "missing.key")
}

// A broker restart: events Disconnected, Reconnecting, Connected; a
// blocking publish made while the client is away waits and goes out.
func TestReconnect(t *testing.T) {
	b := startBroker(t, "")
	events := make(chan ConnectionEvent, 16)
	c := connected(t, b, &Options{
		Reconnect:    &Reconnect{MinDelay: 50 * time.Millisecond, MaxDelay: 500 * time.Millisecond},
		OnConnection: func(e ConnectionEvent) { events <- e },
	})
	next := func() ConnectionEvent {
		select {
		case e := <-events:
			return e
		case <-time.After(wait):
			t.Fatal("no connection event")
			return ConnectionEvent{}
		}
	}
	if e := next(); e.Event != EventConnected {
		t.Fatalf("first event %+v", e)
	}
	b.restart()
	if e := next(); e.Event != EventDisconnected || e.Code >= 0 && e.Code < 0x80 {
		t.Fatalf("after the restart %+v", e)
	}
	for e := next(); e.Event != EventConnected; e = next() {
		if e.Event != EventReconnecting {
			t.Fatalf("while reconnecting %+v", e)
		}
	}
	got := make(chan *Message, 1)
	if _, err := c.Subscribe(bg, "go/back", QoS1, collect(got)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(bg, &Message{Topic: "go/back", QoS: QoS1, Payload: []byte("again")}); err != nil {
		t.Fatal(err)
	}
	receive(t, got)
}

// Subscribing a filter again replaces its handler; nil sends its
// messages back to Options.OnMessage.
func TestResubscribeReplacesHandler(t *testing.T) {
	b := startBroker(t, "")
	first, second, fallback := make(chan *Message, 4), make(chan *Message, 4), make(chan *Message, 4)
	c := connected(t, b, &Options{OnMessage: collect(fallback)})
	pub := connected(t, b, nil)
	send := func(p string) {
		t.Helper()
		if _, err := pub.Publish(bg, &Message{Topic: "go/swap", Payload: []byte(p), QoS: QoS1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		handler func(*Message)
		to      chan *Message
	}{{collect(first), first}, {collect(second), second}, {nil, fallback}, {collect(first), first}} {
		if _, err := c.Subscribe(bg, "go/swap", QoS1, step.handler); err != nil {
			t.Fatal(err)
		}
		send("x")
		receive(t, step.to)
	}
	// Every message went where its step expected, and only there: a
	// client's handlers run in order, so a misrouted earlier message
	// would have arrived before the last one.
	if len(first)+len(second)+len(fallback) != 0 {
		t.Fatalf("extra deliveries: %d %d %d", len(first), len(second), len(fallback))
	}
}

// A context that ends while Publish waits for a silent broker: Publish
// returns ctx.Err() at once; the library call goes on until its own
// operation timeout, and Close waits for it.
func TestContextDeadline(t *testing.T) {
	b := startBroker(t, "")
	c := connected(t, b, &Options{OperationTimeout: 2 * time.Second, KeepAlive: 60 * time.Second})
	if err := syscall.Kill(b.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(b.cmd.Process.Pid, syscall.SIGCONT)
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Publish(ctx, &Message{Topic: "go/silent", Payload: []byte("x"), QoS: QoS1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish to a stopped broker: %v", err)
	}
	if d := time.Since(start); d >= 2*time.Second {
		t.Fatalf("Publish returned after %v, not when its context ended", d)
	}
	c.Close() // waits for the library's publish: at most its 2 s timeout
	if _, err := c.Publish(bg, &Message{Topic: "go/x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// BeforeConnect supplies the credentials a broker without anonymous
// access wants, fresh for each attempt; an error skips the attempt.
func TestBeforeConnect(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if out, err := exec.Command("mosquitto_passwd", "-c", "-b", passwd, "gopher", "token-1").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	b := startBroker(t, "allow_anonymous false\npassword_file "+passwd+"\n")
	attempts := make(chan ConnectAttempt, 4)
	c := newClient(t, &Options{BeforeConnect: func(a *ConnectAttempt) error {
		attempts <- *a
		return a.SetCredentials("gopher", []byte("token-1"))
	}})
	if err := c.Connect(bg, b.url()); err != nil {
		t.Fatalf("Connect with credentials from BeforeConnect: %v", err)
	}
	copied := <-attempts // a copy made during the callback
	if copied.URL != b.url() || copied.Attempt != 1 {
		t.Fatalf("attempt %+v, want %s #1", copied, b.url())
	}
	var kept *ConnectAttempt
	skipper := newClient(t, &Options{BeforeConnect: func(a *ConnectAttempt) error {
		kept = a
		return ErrSkipAttempt
	}})
	expectError(t, skipper.Connect(bg, b.url()), ErrNotConnected, "skip")
	if err := kept.SetCredentials("late", nil); err == nil {
		t.Fatal("a ConnectAttempt used after its callback")
	}
	if err := copied.SetCredentials("late", nil); err == nil {
		t.Fatal("a ConnectAttempt used after its callback")
	}
}

func TestPersistenceDirAndStats(t *testing.T) {
	dir := t.TempDir()
	c := newClient(t, &Options{ClientID: "go-persist", PersistenceDir: dir})
	_, err := NewClient(&Options{ClientID: "go-persist", PersistenceDir: dir})
	expectError(t, err, ErrPersistence, dir)
	if n, err := c.Stat(StatQueueLength); err != nil || n != 0 {
		t.Fatalf("queue length %d, %v", n, err)
	}
	_, err = c.Stat(Stat(9999))
	expectError(t, err, ErrInvalidArgument, "")
}

// With manual acknowledgement and no handler for a message, the library
// acknowledges it: the stream does not stall at Receive Maximum.
func TestManualAckWithoutHandler(t *testing.T) {
	b := startBroker(t, "")
	c := connected(t, b, &Options{ManualAck: true, ReceiveMaximum: 2})
	got := make(chan *Message, 1)
	if _, err := c.Subscribe(bg, "go/unhandled", QoS1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(bg, "go/handled", QoS1, collect(got)); err != nil {
		t.Fatal(err)
	}
	pub := connected(t, b, nil)
	for i := 0; i < 5; i++ { // beyond Receive Maximum: each must be acked
		if _, err := pub.Publish(bg, &Message{Topic: "go/unhandled", QoS: QoS1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pub.Publish(bg, &Message{Topic: "go/handled", QoS: QoS1}); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, got); m.Topic != "go/handled" {
		t.Fatalf("got %+v", m)
	}
}

// The limits reach the library: the broker keeps a message larger than
// our Maximum Packet Size from us; outgoing topic aliases round trip.
func TestLimits(t *testing.T) {
	b := startBroker(t, "")
	got := make(chan *Message, 4)
	sub := connected(t, b, &Options{MaximumPacketSize: 512, TopicAliasMaximum: 5,
		DeliveryQueueMessages: 10, OnMessage: collect(got)})
	if _, err := sub.Subscribe(bg, "go/limits", QoS1, nil); err != nil {
		t.Fatal(err)
	}
	for _, aliases := range []int{0, -1} {
		pub := connected(t, b, &Options{OutgoingTopicAliases: aliases})
		for _, size := range []int{1000, 10, 20} {
			if _, err := pub.Publish(bg, &Message{Topic: "go/limits", Payload: make([]byte, size), QoS: QoS1}); err != nil {
				t.Fatal(err)
			}
		}
		// The 1000-byte message was not sent to us; the others came in
		// order, with their full topic.
		for _, size := range []int{10, 20} {
			if m := receive(t, got); len(m.Payload) != size || m.Topic != "go/limits" {
				t.Fatalf("aliases %d: got %d bytes on %q, want %d", aliases, len(m.Payload), m.Topic, size)
			}
		}
	}
}

// Enhanced authentication against mosquitto, which supports no method
// without a plugin: the CONNACK refusal 0x8C (bad authentication method)
// as a ReasonCode; Reauthenticate without a method is ErrInvalidArgument.
func TestEnhancedAuthRefused(t *testing.T) {
	b := startBroker(t, "")
	var steps atomic.Int32
	c := newClient(t, &Options{AuthMethod: "SCRAM-SHA-256", AuthData: []byte("n,,n=user,r=nonce"),
		OnAuth: func(AuthStep) ([]byte, error) { steps.Add(1); return nil, nil }})
	err := c.Connect(bg, b.url())
	var e *Error
	if !errors.As(err, &e) || e.Reason() != 0x8C || !errors.Is(err, ReasonCode(0x8C)) {
		t.Fatalf("Connect with an unsupported method: %v", err)
	}
	if n := steps.Load(); n != 0 {
		t.Fatalf("OnAuth called %d times for a refusal", n)
	}
	plain := connected(t, b, nil)
	expectError(t, plain.Reauthenticate(bg, []byte("x"), nil), ErrInvalidArgument, "")
}

func TestSubscribeMany(t *testing.T) {
	b := startBroker(t, "")
	got := make(chan *Message, 4)
	c := connected(t, b, &Options{OnMessage: collect(got)})
	codes, err := c.SubscribeMany(bg, []Subscription{{Filter: "go/many/a", QoS: QoS1}, {Filter: "go/many/b", QoS: QoS2}}, nil)
	if err != nil || len(codes) != 2 || codes[0] != ReasonGrantedQoS1 || codes[1] != ReasonGrantedQoS2 {
		t.Fatalf("SubscribeMany = %v, %v", codes, err)
	}
	pub := connected(t, b, nil)
	for _, topic := range []string{"go/many/a", "go/many/b"} {
		if _, err := pub.Publish(bg, &Message{Topic: topic, QoS: QoS1}); err != nil {
			t.Fatal(err)
		}
		if m := receive(t, got); m.Topic != topic {
			t.Fatalf("got %q, want %q", m.Topic, topic)
		}
	}
	codes, err = c.UnsubscribeMany(bg, []string{"go/many/a", "go/never"}, nil)
	if err != nil || len(codes) != 2 || codes[0] != ReasonSuccess || codes[1] != ReasonNoSubscriptionExists {
		t.Fatalf("UnsubscribeMany = %v, %v", codes, err)
	}
	_, err = c.SubscribeMany(bg, []Subscription{{Filter: "go/ok"}, {Filter: "go/#/bad"}}, nil)
	expectError(t, err, ErrInvalidArgument, "go/#/bad")
	_, err = c.SubscribeMany(bg, nil, nil)
	expectError(t, err, ErrInvalidArgument, "no filters")
}
