package mqtt5c

/*
#include <stdlib.h>
#include <mqtt5c.h>
*/
import "C"

import (
	"time"
	"unsafe"
)

// QoS is an MQTT quality of service level.
type QoS int

// The three levels.
const (
	QoS0 QoS = C.MQTT5C_QOS0 // at most once
	QoS1 QoS = C.MQTT5C_QOS1 // at least once
	QoS2 QoS = C.MQTT5C_QOS2 // exactly once
)

// Options configure a client; NewClient copies them, so they may be
// reused or changed afterwards. The zero value is the library's defaults
// (clean start, keep-alive 60 s, no reconnection, no TLS settings: a
// mqtts:// URL then trusts the system's CA certificates).
type Options struct {
	ClientID string // "" lets the broker assign one
	// KeepAlive, rounded down to seconds (0: the library's default).
	KeepAlive time.Duration
	// ResumeSession sends Clean Start false: with SessionExpiry the
	// broker keeps the session (subscriptions, queued QoS 1/2 messages).
	ResumeSession bool
	// SessionExpiry is the Session Expiry Interval, in whole seconds.
	SessionExpiry time.Duration
	Username      string
	Password      []byte // wiped by the library from its own copies
	// Will is published by the broker when the connection ends without
	// DISCONNECT (Close without Disconnect, a lost network).
	Will *Will
	// ConnectTimeout bounds Connect; OperationTimeout bounds each blocking
	// Publish (QoS 1/2), Subscribe and Unsubscribe. 0: the defaults (30 s).
	ConnectTimeout   time.Duration
	OperationTimeout time.Duration
	// ReceiveMaximum: how many QoS 1/2 messages the broker may have in
	// flight to us at once (0: the default, 100).
	ReceiveMaximum uint16
	// MaximumPacketSize is the largest packet we accept (0: the default,
	// 1 MiB); the broker does not send us larger messages.
	MaximumPacketSize uint32
	// TopicAliasMaximum: how many topic aliases the broker may use to us
	// (0: none). Handlers always see the full topic.
	TopicAliasMaximum uint16
	// OutgoingTopicAliases: how many aliases our publishes use (0: as many
	// as the broker allows; negative: none).
	OutgoingTopicAliases int
	// DeliveryQueueMessages and DeliveryQueueBytes bound the received
	// messages waiting for the handlers (0: the defaults, 1000 and 8 MiB);
	// when full the library stops reading until a handler returned.
	DeliveryQueueMessages, DeliveryQueueBytes int
	// FollowRedirects: how many server redirections (CONNACK or
	// DISCONNECT 0x9C/0x9D with a Server Reference) to follow (0: none).
	FollowRedirects int
	// ManualAck: QoS 1/2 messages are acknowledged by Client.Ack, not
	// when the handler returns (a gateway acks once it stored the message).
	ManualAck bool
	// ConnectUserProperties are sent in CONNECT; RequestResponseInformation
	// asks the broker for Response Information (see Client.Request).
	ConnectUserProperties      []UserProperty
	RequestResponseInformation bool
	// Servers are tried in turn after the URL given to Connect fails.
	Servers []string
	// TLS settings for mqtts:// and wss:// URLs (nil: the defaults).
	TLS *TLS
	// Reconnect turns automatic reconnection on (nil: off).
	Reconnect *Reconnect
	// OnMessage receives the messages that no Subscribe handler takes.
	OnMessage func(*Message)
	// OnConnection is told when the connection goes up or down.
	OnConnection func(ConnectionEvent)
	// BeforeConnect runs before each connection attempt, on a library
	// thread while the attempt waits (it may block, to fetch a token);
	// it may change the attempt's credentials; an error skips the
	// attempt. It may call the client's methods except Connect and
	// Disconnect (ErrInvalidArgument); during a reconnection a blocking
	// call fails at once instead of waiting for it.
	BeforeConnect func(*ConnectAttempt) error
	// AuthMethod turns on MQTT v5 enhanced authentication (e.g.
	// "SCRAM-SHA-256") with AuthData as the initial data; OnAuth answers
	// the broker's challenges and checks its success (on a library thread,
	// while Connect or Reauthenticate waits; it may block). Its error
	// aborts: a ReasonCode >= 0x80 is sent in the DISCONNECT, else 0x80.
	// Without OnAuth a challenge aborts and a success is accepted
	// unverified. A broker without the method refuses with 0x8C.
	AuthMethod string
	AuthData   []byte
	OnAuth     func(AuthStep) (answer []byte, err error)
	// PersistenceDir keeps QoS 1/2 messages in flight, and the session
	// state, on disk across crashes (needs ClientID); one client per
	// ClientID and directory at a time.
	PersistenceDir string
	// WebSocketHeaders are added to the ws:// and wss:// upgrade request
	// (e.g. Authorization), in order.
	WebSocketHeaders []HTTPHeader
}

// HTTPHeader is one header of the WebSocket upgrade request.
type HTTPHeader struct {
	Name, Value string
}

// Will is the message the broker publishes for a client that went away.
type Will struct {
	Topic      string
	Payload    []byte
	QoS        QoS
	Retain     bool
	Properties *Properties
}

// TLS configures the TLS of mqtts:// and wss:// connections. File names
// are read when NewClient is called.
type TLS struct {
	CAFile     string   // PEM CA certificates to trust instead of the system's
	CertFile   string   // PEM client certificate chain, for mutual TLS
	KeyFile    string   // its private key (PEM: RSA, ECDSA or Ed25519)
	ServerName string   // SNI and the name checked, instead of the URL's host
	ALPN       []string // protocols offered, most preferred first
	// InsecureSkipVerify accepts any server certificate: test rigs only.
	InsecureSkipVerify bool
}

// Reconnect configures automatic reconnection after a lost connection:
// waits start at MinDelay and double up to MaxDelay. Blocking calls made
// meanwhile wait for the new connection (within OperationTimeout);
// publishes go into the offline queue.
type Reconnect struct {
	MinDelay, MaxDelay time.Duration
	// RetryConnect keeps trying in the background when Connect's own
	// attempt fails (Connect still returns that failure).
	RetryConnect bool
	// NoResubscribe: do not subscribe again after a reconnect that lost the session.
	NoResubscribe bool
	// OfflineQueueMessages and OfflineQueueBytes bound the offline queue
	// (0: the defaults, 10000 messages and 8 MiB); DropOldest makes room
	// by dropping the oldest message instead of refusing the new one.
	OfflineQueueMessages, OfflineQueueBytes int
	DropOldest                              bool
}

func millis(d time.Duration) C.uint32_t {
	if d <= 0 {
		return 0
	}
	if ms := d.Milliseconds(); ms < 1<<32 {
		if ms == 0 {
			return 1
		}
		return C.uint32_t(ms)
	}
	return C.uint32_t(1<<32 - 1)
}

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// toC applies the options to a fresh mqtt_options (freed after the call);
// the status is the first failing setter's.
func (o *Options) toC(cc *cgoCall) (*C.mqtt_options, C.int) {
	opts := C.mqtt_options_new()
	if opts == nil {
		return nil, C.MQTT5C_ERR_INTERNAL
	}
	cc.afterCall(func() { C.mqtt_options_free(opts) })
	if o == nil {
		return opts, C.MQTT5C_OK
	}
	for _, step := range o.steps(cc, opts) {
		if rc := step(); rc != C.MQTT5C_OK {
			return nil, rc
		}
	}
	return opts, C.MQTT5C_OK
}

func (o *Options) steps(cc *cgoCall, opts *C.mqtt_options) []func() C.int {
	var s []func() C.int
	if o.ClientID != "" {
		s = append(s, func() C.int { return C.mqtt_options_set_client_id(opts, cc.cstring(o.ClientID)) })
	}
	if o.KeepAlive > 0 {
		secs := o.KeepAlive / time.Second
		if secs > 65535 {
			secs = 65535
		}
		s = append(s, func() C.int { return C.mqtt_options_set_keep_alive(opts, C.uint16_t(secs)) })
	}
	if o.ResumeSession {
		s = append(s, func() C.int { return C.mqtt_options_set_clean_start(opts, false) })
	}
	if o.SessionExpiry > 0 {
		s = append(s, func() C.int {
			return C.mqtt_options_set_session_expiry(opts, C.uint32_t(o.SessionExpiry/time.Second))
		})
	}
	if o.Username != "" || o.Password != nil {
		s = append(s, func() C.int {
			return C.mqtt_options_set_credentials(opts, cc.cstringOrNil(o.Username),
				bytesPtr(o.Password), C.size_t(len(o.Password)))
		})
	}
	if w := o.Will; w != nil {
		s = append(s, func() C.int {
			props, rc := w.Properties.toC(cc)
			if rc != C.MQTT5C_OK {
				return rc
			}
			return C.mqtt_options_set_will(opts, cc.cstring(w.Topic), bytesPtr(w.Payload),
				C.size_t(len(w.Payload)), C.int(w.QoS), C.bool(w.Retain), props)
		})
	}
	if o.ConnectTimeout > 0 {
		s = append(s, func() C.int { return C.mqtt_options_set_connect_timeout(opts, millis(o.ConnectTimeout)) })
	}
	if o.OperationTimeout > 0 {
		s = append(s, func() C.int { return C.mqtt_options_set_operation_timeout(opts, millis(o.OperationTimeout)) })
	}
	if o.ReceiveMaximum > 0 {
		s = append(s, func() C.int { return C.mqtt_options_set_receive_maximum(opts, C.uint16_t(o.ReceiveMaximum)) })
	}
	if o.MaximumPacketSize > 0 {
		s = append(s, func() C.int { return C.mqtt_options_set_maximum_packet_size(opts, C.uint32_t(o.MaximumPacketSize)) })
	}
	if o.TopicAliasMaximum > 0 {
		s = append(s, func() C.int { return C.mqtt_options_set_topic_alias_maximum(opts, C.uint16_t(o.TopicAliasMaximum)) })
	}
	if o.OutgoingTopicAliases != 0 {
		n := o.OutgoingTopicAliases
		if n < 0 {
			n = 0
		} else if n > 65535 {
			n = 65535
		}
		s = append(s, func() C.int { return C.mqtt_options_set_outgoing_topic_aliases(opts, C.uint16_t(n)) })
	}
	if o.DeliveryQueueMessages > 0 || o.DeliveryQueueBytes > 0 {
		msgs, bytes := o.DeliveryQueueMessages, o.DeliveryQueueBytes
		if msgs <= 0 {
			msgs = 1000
		}
		if bytes <= 0 {
			bytes = 8 << 20
		}
		s = append(s, func() C.int { return C.mqtt_options_set_delivery_queue(opts, C.size_t(msgs), C.size_t(bytes)) })
	}
	if o.FollowRedirects > 0 {
		s = append(s, func() C.int { return C.mqtt_options_set_follow_redirects(opts, C.uint(o.FollowRedirects)) })
	}
	if o.ManualAck {
		s = append(s, func() C.int { return C.mqtt_options_set_manual_ack(opts, true) })
	}
	if len(o.ConnectUserProperties) > 0 || o.RequestResponseInformation {
		s = append(s, func() C.int { return o.connectProperties(cc, opts) })
	}
	if o.AuthMethod != "" {
		s = append(s, func() C.int {
			return C.mqtt_options_set_auth(opts, cc.cstring(o.AuthMethod), bytesPtr(o.AuthData), C.size_t(len(o.AuthData)))
		})
	}
	if o.PersistenceDir != "" {
		s = append(s, func() C.int { return C.mqtt_options_set_persistence_dir(opts, cc.cstring(o.PersistenceDir)) })
	}
	for _, h := range o.WebSocketHeaders {
		h := h
		s = append(s, func() C.int { return C.mqtt_options_add_ws_header(opts, cc.cstring(h.Name), cc.cstring(h.Value)) })
	}
	for _, url := range o.Servers {
		url := url
		s = append(s, func() C.int { return C.mqtt_options_add_server(opts, cc.cstring(url)) })
	}
	if o.TLS != nil {
		s = append(s, o.TLS.steps(cc, opts)...)
	}
	if o.Reconnect != nil {
		s = append(s, o.Reconnect.steps(opts)...)
	}
	return s
}

func (t *TLS) steps(cc *cgoCall, opts *C.mqtt_options) []func() C.int {
	var s []func() C.int
	if t.CAFile != "" {
		s = append(s, func() C.int { return C.mqtt_options_set_tls_ca_file(opts, cc.cstring(t.CAFile)) })
	}
	if t.CertFile != "" || t.KeyFile != "" {
		s = append(s, func() C.int {
			return C.mqtt_options_set_tls_client_cert(opts, cc.cstringOrNil(t.CertFile), cc.cstringOrNil(t.KeyFile))
		})
	}
	if t.ServerName != "" {
		s = append(s, func() C.int { return C.mqtt_options_set_tls_server_name(opts, cc.cstring(t.ServerName)) })
	}
	if len(t.ALPN) > 0 {
		s = append(s, func() C.int {
			// A C array of C strings: Go memory may not hold C pointers
			// passed on, so the array itself is C memory too.
			arr := (**C.char)(C.calloc(C.size_t(len(t.ALPN)), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
			cc.afterCall(func() { C.free(unsafe.Pointer(arr)) })
			items := unsafe.Slice(arr, len(t.ALPN))
			for i, p := range t.ALPN {
				items[i] = cc.cstring(p)
			}
			return C.mqtt_options_set_tls_alpn(opts, arr, C.size_t(len(t.ALPN)))
		})
	}
	if t.InsecureSkipVerify {
		s = append(s, func() C.int { return C.mqtt_options_set_tls_insecure_skip_verify(opts, true) })
	}
	return s
}

func (r *Reconnect) steps(opts *C.mqtt_options) []func() C.int {
	s := []func() C.int{func() C.int {
		return C.mqtt_options_set_auto_reconnect(opts, millis(r.MinDelay), millis(r.MaxDelay))
	}}
	if r.RetryConnect {
		s = append(s, func() C.int { return C.mqtt_options_set_connect_retry(opts, true) })
	}
	if r.NoResubscribe {
		s = append(s, func() C.int { return C.mqtt_options_set_resubscribe(opts, false) })
	}
	if r.OfflineQueueMessages > 0 || r.OfflineQueueBytes > 0 || r.DropOldest {
		s = append(s, func() C.int {
			msgs, bytes := r.OfflineQueueMessages, r.OfflineQueueBytes
			if msgs <= 0 {
				msgs = 10000
			}
			if bytes <= 0 {
				bytes = 8 << 20
			}
			policy := C.int(C.MQTT5C_QUEUE_FAIL_NEW)
			if r.DropOldest {
				policy = C.MQTT5C_QUEUE_DROP_OLDEST
			}
			return C.mqtt_options_set_offline_queue(opts, C.size_t(msgs), C.size_t(bytes), policy)
		})
	}
	return s
}

func (o *Options) connectProperties(cc *cgoCall, opts *C.mqtt_options) C.int {
	props, rc := (&Properties{UserProperties: o.ConnectUserProperties}).toC(cc)
	if rc != C.MQTT5C_OK {
		return rc
	}
	if props == nil {
		if props = C.mqtt_properties_new(); props == nil {
			return C.MQTT5C_ERR_INTERNAL
		}
		cc.afterCall(func() { C.mqtt_properties_free(props) })
	}
	if o.RequestResponseInformation {
		if rc := C.mqtt_properties_set_int(props, C.MQTT5C_PROP_REQUEST_RESPONSE_INFORMATION, 1); rc != C.MQTT5C_OK {
			return rc
		}
	}
	return C.mqtt_options_set_connect_properties(opts, props)
}
