package mqtt5c

/*
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <mqtt5c.h>

int mqtt5c_go_set_callbacks(mqtt_client *client, uintptr_t handle, bool message,
                            bool connection);
int mqtt5c_go_set_pre_connect(mqtt_client *client, uintptr_t handle);
int mqtt5c_go_set_auth(mqtt_client *client, uintptr_t handle);
int mqtt5c_go_subscribe_cb(mqtt_client *client, const char *filter, int options,
                           const mqtt_properties *props, uintptr_t handle);
*/
import "C"

import (
	"context"
	"errors"
	"runtime/cgo"
	"sync"
)

// Client is one MQTT v5 client: a connection, its session and its
// callbacks. Its methods may be called from any goroutine at once,
// handlers included. Close it when done: until then the library holds
// a handle to it and it is never garbage-collected.
type Client struct {
	c      *C.mqtt_client
	handle cgo.Handle // user_data of the message and connection callbacks

	onMessage     func(*Message)
	onConnection  func(ConnectionEvent)
	beforeConnect func(*ConnectAttempt) error
	onAuth        func(AuthStep) ([]byte, error)

	logMu sync.Mutex
	onLog func(LogLevel, string) // SetLogHandler

	mu      sync.Mutex
	idle    *sync.Cond // signalled when active drops to 0
	active  int        // calls inside the library
	closed  bool
	routes  map[string]*route         // Subscribe handlers, by filter
	pending map[*publishDone]struct{} // PublishAsync outcomes not reported yet
}

// route is the user_data of one filter's Subscribe handlers. Subscribing
// the same filter again reuses it (the library then keeps the same
// user_data), so however goroutines race to subscribe, the handle the
// library holds stays valid; it is deleted by Close. One per distinct
// filter ever given a handler.
type route struct {
	handle  cgo.Handle
	mu      sync.Mutex
	handler func(*Message)
	gen     uint64 // counts handler changes, to undo only our own
}

func (r *route) get() func(*Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.handler
}

// set installs h and returns an undo for a subscribe that failed: the
// previous handler comes back unless another Subscribe changed it since.
func (r *route) set(h func(*Message)) (undo func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.handler
	r.gen++
	gen := r.gen
	r.handler = h
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.gen == gen {
			r.handler = prev
		}
	}
}

// NewClient makes a disconnected client with the given options (nil: the
// defaults). Errors carry the library's text (a CA file that cannot be
// read names the path and the cause, for example).
func NewClient(opts *Options) (*Client, error) {
	cl := &Client{routes: map[string]*route{}, pending: map[*publishDone]struct{}{}}
	cl.idle = sync.NewCond(&cl.mu)
	if opts != nil {
		cl.onMessage, cl.onConnection, cl.beforeConnect = opts.OnMessage, opts.OnConnection, opts.BeforeConnect
		cl.onAuth = opts.OnAuth
	}
	_, err := run("new client", func(cc *cgoCall) C.int {
		o, rc := opts.toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		cl.c = C.mqtt_client_new(o)
		if cl.c == nil { // mqtt_last_error() says why
			if opts != nil && opts.PersistenceDir != "" {
				return C.MQTT5C_ERR_PERSISTENCE
			}
			return C.MQTT5C_ERR_INTERNAL
		}
		return C.MQTT5C_OK
	})
	if err != nil {
		return nil, err
	}
	cl.handle = cgo.NewHandle(cl)
	if _, err := run("set callbacks", func(*cgoCall) C.int {
		h := C.uintptr_t(cl.handle)
		rc := C.mqtt5c_go_set_callbacks(cl.c, h, cl.onMessage != nil, cl.onConnection != nil)
		if rc == C.MQTT5C_OK && cl.beforeConnect != nil {
			rc = C.mqtt5c_go_set_pre_connect(cl.c, h)
		}
		if rc == C.MQTT5C_OK && cl.onAuth != nil {
			rc = C.mqtt5c_go_set_auth(cl.c, h)
		}
		return rc
	}); err != nil {
		C.mqtt_client_free(cl.c)
		cl.handle.Delete()
		return nil, err
	}
	return cl, nil
}

// enter admits a call unless Close has started; leave ends it.
func (c *Client) enter() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.active++
	return nil
}

func (c *Client) leave() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active--; c.active == 0 {
		c.idle.Broadcast()
	}
}

// call runs one library call (see run) while the client cannot be freed.
// With a context that can end, the call runs on its own goroutine and
// the method returns ctx.Err() as soon as the context ends; the library
// call itself is not interrupted: it goes on until it completes or its
// own timeout passes, and its result is dropped.
func (c *Client) call(ctx context.Context, op string, f func(cc *cgoCall) C.int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := c.enter(); err != nil {
		return 0, err
	}
	if ctx.Done() == nil {
		defer c.leave()
		return run(op, f)
	}
	type result struct {
		rc  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer c.leave()
		rc, err := run(op, f)
		done <- result{rc, err}
	}()
	select {
	case r := <-done:
		return r.rc, r.err
	case <-ctx.Done():
		select {
		case r := <-done: // finished meanwhile: its result wins
			return r.rc, r.err
		default:
			return 0, ctx.Err()
		}
	}
}

// Connect connects to the broker at url: mqtt://host:port (or tcp://),
// mqtts:// (TLS), ws://, wss://, unix:///path. It blocks until the
// broker's CONNACK or Options.ConnectTimeout. A refusal is an *Error
// whose Reason() is the CONNACK reason code (0x86 bad user name or
// password, 0x87 not authorized, ...).
func (c *Client) Connect(ctx context.Context, url string) error {
	_, err := c.call(ctx, "connect", func(cc *cgoCall) C.int {
		return C.mqtt_connect(c.c, cc.cstring(url))
	})
	return err
}

// Message is a message to publish, or one received.
type Message struct {
	Topic   string
	Payload []byte
	QoS     QoS
	Retain  bool
	Dup     bool // received only: the broker sent it again
	// AckID (received, with Options.ManualAck): pass the message to
	// Client.Ack. 0 for QoS 0 and without manual acknowledgement.
	AckID      uint64
	Properties Properties
}

// Publish publishes m. QoS 0 returns once written; QoS 1 and 2 once
// acknowledged (PUBACK, PUBCOMP), within Options.OperationTimeout. The
// reason code is the acknowledgement's, a success such as 0x10 (no
// matching subscribers) included; a refusal (>= 0x80) is an *Error.
// With a context that can end the payload is copied first, since the
// library may still read it after Publish returned ctx.Err().
func (c *Client) Publish(ctx context.Context, m *Message) (ReasonCode, error) {
	payload := m.Payload
	if ctx.Done() != nil {
		payload = append([]byte(nil), payload...)
	}
	rc, err := c.call(ctx, "publish", func(cc *cgoCall) C.int {
		props, rc := m.Properties.toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		return C.mqtt_publish(c.c, cc.cstring(m.Topic), bytesPtr(payload), C.size_t(len(payload)),
			C.int(m.QoS), C.bool(m.Retain), props)
	})
	return reason(rc, err)
}

func reason(rc int, err error) (ReasonCode, error) {
	if err != nil || rc < 0 || rc > 0xFF {
		return 0, err
	}
	return ReasonCode(rc), nil
}

// RetainHandling says when the broker sends retained messages on subscribe.
type RetainHandling int

// The three choices of MQTT v5.
const (
	RetainSendOnSubscribe RetainHandling = 0
	RetainSendIfNew       RetainHandling = C.MQTT5C_SUB_RETAIN_HANDLING_NEW_ONLY
	RetainDoNotSend       RetainHandling = C.MQTT5C_SUB_RETAIN_HANDLING_NONE
)

// Subscription is a filter with its MQTT v5 subscription options.
type Subscription struct {
	Filter            string
	QoS               QoS
	NoLocal           bool // not our own messages
	RetainAsPublished bool
	RetainHandling    RetainHandling
	// Properties: a Subscription Identifier and User Properties.
	Properties Properties
}

func (s *Subscription) options() C.int {
	o := C.int(s.QoS) | C.int(s.RetainHandling)
	if s.NoLocal {
		o |= C.MQTT5C_SUB_NO_LOCAL
	}
	if s.RetainAsPublished {
		o |= C.MQTT5C_SUB_RETAIN_AS_PUBLISHED
	}
	return o
}

// Subscribe subscribes to filter at qos and returns the granted QoS.
// With a handler, the messages of this subscription go to it instead of
// Options.OnMessage (until Unsubscribe, or a Subscribe of the same filter
// replaces it; one that surely failed, a refusal or a bad argument, puts
// the previous handler back). See SubscribeWith.
func (c *Client) Subscribe(ctx context.Context, filter string, qos QoS, handler func(*Message)) (QoS, error) {
	rc, err := c.SubscribeWith(ctx, Subscription{Filter: filter, QoS: qos}, handler)
	return QoS(rc), err
}

// SubscribeWith subscribes with all the options and returns the SUBACK
// reason code (the granted QoS); a refusal (>= 0x80) is an *Error. It
// blocks until SUBACK, within Options.OperationTimeout.
func (c *Client) SubscribeWith(ctx context.Context, s Subscription, handler func(*Message)) (_ ReasonCode, err error) {
	var r *route
	if handler != nil {
		// Set before the call: messages may come right after SUBACK.
		if r = c.route(s.Filter); r == nil {
			return 0, ErrClosed
		}
		undo := r.set(handler)
		defer func() {
			if notSubscribed(err) {
				undo()
			}
		}()
	}
	rc, err := c.call(ctx, "subscribe", func(cc *cgoCall) C.int {
		props, rc := s.Properties.toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		filter := cc.cstring(s.Filter)
		if r == nil {
			return C.mqtt_subscribe(c.c, filter, s.options(), props)
		}
		return C.mqtt5c_go_subscribe_cb(c.c, filter, s.options(), props, C.uintptr_t(r.handle))
	})
	return reason(rc, err)
}

// notSubscribed: err says the subscription surely was not made (not a
// timeout or a cancelled context, after which it may have been).
func notSubscribed(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch ErrorCode(e.Code) {
	case ErrInvalidArgument, ErrNotConnected, ErrBadState:
		return true
	}
	return e.Reason().Failed()
}

// route gives the filter's route, made on first use; nil after Close.
func (c *Client) route(filter string) *route {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	r := c.routes[filter]
	if r == nil {
		r = &route{}
		r.handle = cgo.NewHandle(r)
		c.routes[filter] = r
	}
	return r
}

// Unsubscribe ends the subscription to filter (and its handler). The
// reason code may be 0x11, no subscription existed: a success.
func (c *Client) Unsubscribe(ctx context.Context, filter string) (ReasonCode, error) {
	rc, err := c.call(ctx, "unsubscribe", func(cc *cgoCall) C.int {
		return C.mqtt_unsubscribe(c.c, cc.cstring(filter), nil)
	})
	return reason(rc, err)
}

// Disconnect sends DISCONNECT (normal, the will is not published) and
// closes the connection; the client may Connect again. See DisconnectWith.
func (c *Client) Disconnect(ctx context.Context) error {
	return c.DisconnectWith(ctx, 0, nil)
}

// DisconnectWith sends DISCONNECT with a reason code (0x04: publish the
// will anyway) and properties (Session Expiry, Reason String, User
// Properties; nil: none).
func (c *Client) DisconnectWith(ctx context.Context, code ReasonCode, props *Properties) error {
	_, err := c.call(ctx, "disconnect", func(cc *cgoCall) C.int {
		p, rc := props.toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		return C.mqtt_disconnect(c.c, C.int(code), p)
	})
	return err
}

// IsConnected reports whether the connection is up now.
func (c *Client) IsConnected() bool {
	if c.enter() != nil {
		return false
	}
	defer c.leave()
	return bool(C.mqtt_is_connected(c.c))
}

// Close frees the client: the connection is closed without DISCONNECT
// (so the broker publishes the will; call Disconnect first for a clean
// end) and queued messages are dropped. Calls started after Close began
// return ErrClosed; Close waits for the calls already inside the library
// (each bounded by its timeout) and for a handler running on another
// thread. Once Close returned no handler runs any more. It may be called
// from a handler (it does not wait for that one), and more than once: a
// Close while another is in progress returns at once (it cannot wait:
// the first may be waiting for the handler that calls the second).
// A handler must not block on what the goroutine calling Close would do
// only after Close returned, and a Subscribe handler must not call Close
// while another goroutine subscribes or unsubscribes its filter: each
// would wait for the other.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for c.active > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()
	C.mqtt_client_free(c.c)
	// No callback runs after mqtt_client_free returned (but the one
	// calling Close, which already holds what it needs): the handles may go.
	c.handle.Delete()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.routes {
		r.handle.Delete()
	}
	for pd := range c.pending { // dropped by mqtt_client_free
		pd.handle.Delete()
	}
	c.pending = nil
	return nil
}

// Version is the library's version text, e.g. "mqtt5c 0.1.0".
func Version() string { return C.GoString(C.mqtt_version()) }

// GlobalInit sets the number of the library's runtime worker threads
// (0: the default): before the first NewClient, or after GlobalCleanup;
// an *Error with ErrBadState while the runtime runs.
func GlobalInit(workerThreads uint) error {
	_, err := run("global init", func(*cgoCall) C.int { return C.mqtt_global_init(C.uint(workerThreads)) })
	return err
}

// GlobalCleanup stops every thread of the library and waits until they
// have exited (mqtt_global_cleanup), once every Client is closed: before
// a host unloads the library, say. The next NewClient starts them again.
// An *Error with ErrBadState while a client is not closed (nothing is
// stopped) or when called from a handler; with ErrTimeout when a library
// thread was still busy after 30 s.
func GlobalCleanup() error {
	_, err := run("global cleanup", func(*cgoCall) C.int { return C.mqtt_global_cleanup() })
	return err
}
