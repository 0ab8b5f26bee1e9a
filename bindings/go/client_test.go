package mqtt5c

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wait is how long a test waits for an event before it fails: generous,
// for slow shared CI machines; a passing test never waits this long.
const wait = 20 * time.Second

var bg = context.Background()

func newClient(t *testing.T, opts *Options) *Client {
	t.Helper()
	c, err := NewClient(opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func connected(t *testing.T, b *broker, opts *Options) *Client {
	t.Helper()
	c := newClient(t, opts)
	if err := c.Connect(bg, b.url()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c
}

// receive waits for a message on ch.
func receive(t *testing.T, ch <-chan *Message) *Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatalf("no message within %v", wait)
		return nil
	}
}

func collect(ch chan *Message) func(*Message) {
	return func(m *Message) { ch <- m }
}

func TestRoundTripQoS(t *testing.T) {
	b := startBroker(t, "")
	sub := connected(t, b, &Options{ClientID: "go-rt-sub"})
	pub := connected(t, b, &Options{ClientID: "go-rt-pub"})
	for _, qos := range []QoS{QoS0, QoS1, QoS2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			topic := fmt.Sprintf("go/rt/%d", qos)
			got := make(chan *Message, 1)
			granted, err := sub.Subscribe(bg, topic, qos, collect(got))
			if err != nil || granted != qos {
				t.Fatalf("Subscribe = %v, %v; want %v", granted, err, qos)
			}
			payload := []byte{0, 1, 2, 0xFF, 'g', 'o', 0}
			rc, err := pub.Publish(bg, &Message{Topic: topic, Payload: payload, QoS: qos})
			if err != nil || rc != ReasonSuccess {
				t.Fatalf("Publish = %v, %v", rc, err)
			}
			m := receive(t, got)
			if m.Topic != topic || !bytes.Equal(m.Payload, payload) || m.QoS != qos || m.Retain {
				t.Fatalf("received %+v", m)
			}
		})
	}
}

func TestRetainAndEmptyPayload(t *testing.T) {
	b := startBroker(t, "")
	pub := connected(t, b, nil)
	if _, err := pub.Publish(bg, &Message{Topic: "go/retained", Payload: []byte("kept"), QoS: QoS1, Retain: true}); err != nil {
		t.Fatal(err)
	}
	got := make(chan *Message, 2)
	sub := connected(t, b, &Options{OnMessage: collect(got)})
	if _, err := sub.Subscribe(bg, "go/retained", QoS1, nil); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, got); !m.Retain || string(m.Payload) != "kept" {
		t.Fatalf("retained message: %+v", m)
	}
	if _, err := pub.Publish(bg, &Message{Topic: "go/retained", QoS: QoS1}); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, got); m.Payload == nil || len(m.Payload) != 0 {
		t.Fatalf("empty payload: %+v", m)
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	b := startBroker(t, "")
	got := make(chan *Message, 1)
	sub := connected(t, b, nil)
	s := Subscription{Filter: "go/props/#", QoS: QoS2, Properties: Properties{SubscriptionIdentifiers: []uint32{7}}}
	if _, err := sub.SubscribeWith(bg, s, collect(got)); err != nil {
		t.Fatal(err)
	}
	sent := Properties{
		PayloadFormatUTF8: true,
		MessageExpiry:     3600,
		ContentType:       "application/json",
		ResponseTopic:     "go/replies/1",
		CorrelationData:   []byte{0, 0xFE, 'x'},
		UserProperties:    []UserProperty{{"k", "v1"}, {"k", "v2"}, {"émoji", "✓"}},
	}
	pub := connected(t, b, nil)
	if _, err := pub.Publish(bg, &Message{Topic: "go/props/a", Payload: []byte(`{}`), QoS: QoS1, Properties: sent}); err != nil {
		t.Fatal(err)
	}
	p := receive(t, got).Properties
	if !p.PayloadFormatUTF8 || p.ContentType != sent.ContentType || p.ResponseTopic != sent.ResponseTopic ||
		!bytes.Equal(p.CorrelationData, sent.CorrelationData) || fmt.Sprint(p.UserProperties) != fmt.Sprint(sent.UserProperties) ||
		fmt.Sprint(p.SubscriptionIdentifiers) != "[7]" || p.MessageExpiry == 0 || p.MessageExpiry > 3600 {
		t.Fatalf("received properties %+v\nsent %+v", p, sent)
	}
}

func TestErrors(t *testing.T) {
	b := startBroker(t, "")

	t.Run("unknown scheme", func(t *testing.T) {
		err := newClient(t, nil).Connect(bg, "gopher://127.0.0.1:1")
		expectError(t, err, ErrInvalidArgument, "scheme")
	})
	t.Run("connection refused", func(t *testing.T) {
		err := newClient(t, nil).Connect(bg, fmt.Sprintf("mqtt://127.0.0.1:%d", freePort(t)))
		expectError(t, err, ErrIO, "refused")
	})
	t.Run("not connected", func(t *testing.T) {
		_, err := newClient(t, nil).Publish(bg, &Message{Topic: "go/x", QoS: QoS1})
		expectError(t, err, ErrNotConnected, "")
	})
	t.Run("wildcard in topic", func(t *testing.T) {
		c := connected(t, b, nil)
		_, err := c.Publish(bg, &Message{Topic: "go/+/x", QoS: QoS1})
		expectError(t, err, ErrInvalidArgument, "wildcard")
		// The connection is intact.
		if _, err := c.Publish(bg, &Message{Topic: "go/ok", QoS: QoS1}); err != nil || !c.IsConnected() {
			t.Fatalf("publish after the refused one: %v", err)
		}
	})
	t.Run("NUL in a string", func(t *testing.T) {
		c := connected(t, b, nil)
		_, err := c.Publish(bg, &Message{Topic: "go/a\x00b", QoS: QoS1})
		expectError(t, err, ErrInvalidArgument, "NUL")
		_, err = c.Publish(bg, &Message{Topic: "go/x", Properties: Properties{UserProperties: []UserProperty{{"k\x00", "v"}}}})
		expectError(t, err, ErrInvalidArgument, "NUL")
		_, err = NewClient(&Options{ClientID: "id\x00"})
		expectError(t, err, ErrInvalidArgument, "NUL")
	})
	t.Run("property not allowed", func(t *testing.T) {
		c := connected(t, b, nil)
		_, err := c.Publish(bg, &Message{Topic: "go/x", Properties: Properties{ReasonString: "no"}})
		expectError(t, err, ErrInvalidArgument, "Reason String")
	})
	t.Run("bad CA file", func(t *testing.T) {
		_, err := NewClient(&Options{TLS: &TLS{CAFile: "/nonexistent/ca.pem"}})
		expectError(t, err, ErrInvalidArgument, "/nonexistent/ca.pem")
	})
	t.Run("closed", func(t *testing.T) {
		c := connected(t, b, nil)
		c.Close()
		if _, err := c.Publish(bg, &Message{Topic: "go/x"}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Publish after Close: %v", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(bg)
		cancel()
		if err := newClient(t, nil).Connect(ctx, b.url()); !errors.Is(err, context.Canceled) {
			t.Fatalf("Connect with a cancelled context: %v", err)
		}
	})
}

func TestConnackRefusal(t *testing.T) {
	b := startBroker(t, "allow_anonymous false\n")
	err := newClient(t, nil).Connect(bg, b.url())
	var e *Error
	if !errors.As(err, &e) || !e.Reason().Failed() || !errors.Is(err, e.Reason()) {
		t.Fatalf("Connect to a broker refusing anonymous clients: %v", err)
	}
	if e.Reason() != 0x86 && e.Reason() != 0x87 {
		t.Fatalf("reason 0x%02X, want 0x86 or 0x87 (%v)", byte(e.Reason()), err)
	}
}

// expectError checks the code (errors.Is) and that the library's text
// (errors.As) contains want.
func expectError(t *testing.T, err error, code ErrorCode, want string) {
	t.Helper()
	var e *Error
	if !errors.Is(err, code) || !errors.As(err, &e) {
		t.Fatalf("got %v, want %v", err, code)
	}
	t.Logf("%v", err)
	if e.Text == "" || !strings.Contains(e.Text, want) {
		t.Fatalf("text %q does not contain %q (error %v)", e.Text, want, err)
	}
}

// A handler that publishes (QoS 1 and 2, blocking until acknowledged)
// from inside itself, while more requests keep arriving.
func TestPublishFromHandler(t *testing.T) {
	b := startBroker(t, "")
	const n = 50
	responder := connected(t, b, nil)
	var failures atomic.Int32
	_, err := responder.Subscribe(bg, "go/req", QoS1, func(m *Message) {
		qos := QoS1 + QoS(m.Payload[0]%2)
		if _, err := responder.Publish(bg, &Message{Topic: "go/resp", Payload: m.Payload, QoS: qos}); err != nil {
			failures.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Message, n)
	requester := connected(t, b, nil)
	if _, err := requester.Subscribe(bg, "go/resp", QoS2, collect(got)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := requester.Publish(bg, &Message{Topic: "go/req", Payload: []byte{byte(i)}, QoS: QoS1}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if m := receive(t, got); m.Payload[0] != byte(i) {
			t.Fatalf("response %d carries %d", i, m.Payload[0])
		}
	}
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d publishes from the handler failed", f)
	}
}

// Close while messages keep arriving and the handler publishes: no
// handler runs once Close returned, calls after it fail with ErrClosed,
// and the process neither crashes nor deadlocks.
func TestCloseWhileMessagesFlow(t *testing.T) {
	b := startBroker(t, "")
	for round := 0; round < 5; round++ {
		var closed atomic.Bool
		var late, seen atomic.Int32
		enough := make(chan struct{})
		sub := connected(t, b, nil)
		_, err := sub.Subscribe(bg, "go/flow", QoS1, func(m *Message) {
			if closed.Load() {
				late.Add(1)
			}
			if seen.Add(1) == 20 {
				close(enough)
			}
			// A blocking call from the handler while Close may be waiting.
			sub.Publish(bg, &Message{Topic: "go/echo", Payload: m.Payload, QoS: QoS1})
		})
		if err != nil {
			t.Fatal(err)
		}
		pub := connected(t, b, nil)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := pub.Publish(bg, &Message{Topic: "go/flow", Payload: []byte(fmt.Sprint(i)), QoS: QoS1}); err != nil {
					t.Errorf("publisher: %v", err)
					return
				}
			}
		}()
		select {
		case <-enough:
		case <-time.After(wait):
			t.Fatal("messages did not flow")
		}
		sub.Close()
		closed.Store(true)
		// Messages keep coming to the broker for a while: each QoS 1
		// publish acknowledged means the broker handled one more.
		for i := 0; i < 20; i++ {
			if _, err := pub.Publish(bg, &Message{Topic: "go/flow", QoS: QoS1}); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		pub.Close()
		if l := late.Load(); l != 0 {
			t.Fatalf("round %d: %d handler calls after Close returned", round, l)
		}
		if _, err := sub.Subscribe(bg, "go/x", QoS0, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe after Close: %v", err)
		}
	}
}

// Close from inside a handler returns and stops further deliveries.
func TestCloseFromHandler(t *testing.T) {
	b := startBroker(t, "")
	returned := make(chan struct{})
	var c *Client
	c = connected(t, b, &Options{OnMessage: func(*Message) {
		c.Close()
		close(returned)
	}})
	if _, err := c.Subscribe(bg, "go/close", QoS0, nil); err != nil {
		t.Fatal(err)
	}
	pub := connected(t, b, nil)
	if _, err := pub.Publish(bg, &Message{Topic: "go/close", QoS: QoS1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	case <-time.After(wait):
		t.Fatal("Close from a handler did not return")
	}
}

func TestConnectionEventsAndWill(t *testing.T) {
	b := startBroker(t, "")
	events := make(chan ConnectionEvent, 4)
	will := make(chan *Message, 1)
	watcher := connected(t, b, nil)
	if _, err := watcher.Subscribe(bg, "go/will", QoS1, collect(will)); err != nil {
		t.Fatal(err)
	}
	c := connected(t, b, &Options{
		ClientID:     "go-will",
		Will:         &Will{Topic: "go/will", Payload: []byte("gone"), QoS: QoS1, Properties: &Properties{ContentType: "text/plain"}},
		OnConnection: func(e ConnectionEvent) { events <- e },
	})
	expectEvent := func(want Event) ConnectionEvent {
		select {
		case e := <-events:
			if e.Event != want {
				t.Fatalf("event %+v, want %v", e, want)
			}
			return e
		case <-time.After(wait):
			t.Fatalf("no event %v", want)
			return ConnectionEvent{}
		}
	}
	expectEvent(EventConnected)
	if err := c.DisconnectWith(bg, 0x04, nil); err != nil { // 0x04: with will
		t.Fatal(err)
	}
	if e := expectEvent(EventDisconnected); e.Code != 0x04 {
		t.Fatalf("disconnected with %#x", e.Code)
	}
	if m := receive(t, will); string(m.Payload) != "gone" || m.Properties.ContentType != "text/plain" {
		t.Fatalf("will %+v", m)
	}
}
