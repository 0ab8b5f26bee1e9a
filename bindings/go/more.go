package mqtt5c

/*
#include <stdlib.h>
#include <stdint.h>
#include <mqtt5c.h>

int mqtt5c_go_publish_async(mqtt_client *client, const char *topic, const void *payload,
                            size_t len, int qos, bool retain, const mqtt_properties *props,
                            uintptr_t handle);
*/
import "C"

import (
	"context"
	"runtime/cgo"
	"time"
	"unsafe"
)

// publishDone is the user_data of one PublishAsync.
type publishDone struct {
	client *Client
	handle cgo.Handle
	done   func(ReasonCode, error)
}

// PublishAsync publishes m and returns once it is written (QoS 1/2: first
// waiting for a free slot of the broker's Receive Maximum), or queued
// while the client reconnects; done, if not nil, is then called exactly
// once with the outcome (the PUBACK/PUBCOMP reason code, or an *Error:
// a refusal with the broker's reason string as Text, ErrConnectionLost,
// ErrQueueFull, ErrExpired), on the handler thread, in order with the
// message handlers. An error returned here means done is never called.
// Close drops the outcomes not reported yet.
func (c *Client) PublishAsync(m *Message, done func(ReasonCode, error)) error {
	pd := &publishDone{client: c, done: done}
	if !c.track(pd) {
		return ErrClosed
	}
	_, err := c.call(context.Background(), "publish", func(cc *cgoCall) C.int {
		props, rc := m.Properties.toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		return C.mqtt5c_go_publish_async(c.c, cc.cstring(m.Topic), bytesPtr(m.Payload), C.size_t(len(m.Payload)),
			C.int(m.QoS), C.bool(m.Retain), props, C.uintptr_t(pd.handle))
	})
	if err != nil {
		c.untrack(pd)
	}
	return err
}

// track gives pd a handle, deleted by untrack or by Close.
func (c *Client) track(pd *publishDone) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	pd.handle = cgo.NewHandle(pd)
	c.pending[pd] = struct{}{}
	return true
}

// untrack deletes pd's handle once: a completion and Close may race.
func (c *Client) untrack(pd *publishDone) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[pd]; !ok {
		return false
	}
	delete(c.pending, pd)
	pd.handle.Delete()
	return true
}

//export mqtt5cGoPublished
func mqtt5cGoPublished(handle C.uintptr_t, result C.int, _ *C.mqtt_properties) {
	pd := cgo.Handle(handle).Value().(*publishDone)
	var err error
	if !succeeded(result) {
		// On the callback's thread: the library put the detail here.
		err = &Error{Op: "publish", Code: int(result), Text: C.GoString(C.mqtt_last_error())}
	}
	if pd.client.untrack(pd) && pd.done != nil {
		pd.done(reason(int(result), err))
	}
}

// Request publishes m with a fresh Response Topic and Correlation Data
// (m must carry neither) and waits for the first message that comes back
// with that Correlation Data, at most timeout (0: Options.OperationTimeout).
// The responder publishes its answer to the request's Response Topic with
// its Correlation Data. With automatic reconnection a request lost with
// the connection is published again, so a responder may see it twice.
func (c *Client) Request(ctx context.Context, m *Message, timeout time.Duration) (*Message, error) {
	payload := m.Payload
	if ctx.Done() != nil {
		payload = append([]byte(nil), payload...)
	}
	var resp *Message
	_, err := c.call(ctx, "request", func(cc *cgoCall) C.int {
		props, rc := m.Properties.toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		var out *C.mqtt_message
		rc = C.mqtt_request(c.c, cc.cstring(m.Topic), bytesPtr(payload), C.size_t(len(payload)),
			C.int(m.QoS), props, millis(timeout), &out)
		if out != nil {
			resp = messageFromC(out)
			C.mqtt_message_free(out)
		}
		return rc
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Ack acknowledges a message received with Options.ManualAck (its
// PUBACK or PUBREC; code 0 or a failure such as 0x80, 0x87): from any
// goroutine, inside the handler or long after it. A QoS 0 message (AckID
// 0) needs none and is accepted. It does not block.
func (c *Client) Ack(m *Message, code ReasonCode) error {
	_, err := c.call(context.Background(), "ack", func(*cgoCall) C.int {
		return C.mqtt_ack(c.c, C.uint64_t(m.AckID), C.int(code))
	})
	return err
}

// SessionPresent reports whether the broker resumed a session at the
// last connect (CONNACK's Session Present).
func (c *Client) SessionPresent() bool {
	if c.enter() != nil {
		return false
	}
	defer c.leave()
	return bool(C.mqtt_session_present(c.c))
}

// ClientID is the client identifier in use: the one of the options, or
// the one the broker assigned at the last connect.
func (c *Client) ClientID() string {
	if c.enter() != nil {
		return ""
	}
	defer c.leave()
	n := C.mqtt_client_get_id(c.c, nil, 0)
	if n <= 0 {
		return ""
	}
	buf := (*C.char)(C.malloc(C.size_t(n) + 1))
	defer C.free(unsafe.Pointer(buf))
	if n = C.mqtt_client_get_id(c.c, buf, C.size_t(n)+1); n < 0 {
		return ""
	}
	return C.GoStringN(buf, n)
}

// ServerProperties are the properties of the broker's CONNACK or
// DISCONNECT. Absent ones hold MQTT's defaults (ReceiveMaximum 65535,
// MaximumQoS 2, RetainAvailable true) or the zero value.
type ServerProperties struct {
	AssignedClientID    string
	ServerKeepAlive     time.Duration // 0: ours applies
	SessionExpiry       time.Duration
	ReceiveMaximum      uint16
	MaximumQoS          QoS
	RetainAvailable     bool
	MaximumPacketSize   uint32 // 0: no limit
	TopicAliasMaximum   uint16
	ResponseInformation string
	ServerReference     string
	ReasonString        string
	UserProperties      []UserProperty
}

// ConnackProperties are the properties of the last CONNACK (also of a
// refusing one); nil before any.
func (c *Client) ConnackProperties() *ServerProperties {
	return c.serverProperties(func() *C.mqtt_properties { return C.mqtt_connack_properties(c.c) })
}

// DisconnectProperties are the properties of the DISCONNECT the broker
// sent last (Reason String, Server Reference, ...); nil if none.
func (c *Client) DisconnectProperties() *ServerProperties {
	return c.serverProperties(func() *C.mqtt_properties { return C.mqtt_disconnect_properties(c.c) })
}

func (c *Client) serverProperties(get func() *C.mqtt_properties) *ServerProperties {
	if c.enter() != nil {
		return nil
	}
	defer c.leave()
	props := get()
	if props == nil {
		return nil
	}
	defer C.mqtt_properties_free(props)
	intProp := func(id C.int, absent uint32) uint32 {
		var v C.uint32_t
		if C.mqtt_properties_get_int(props, id, &v) == C.MQTT5C_OK {
			return uint32(v)
		}
		return absent
	}
	p := propertiesFromC(props)
	return &ServerProperties{
		AssignedClientID:    stringProp(props, C.MQTT5C_PROP_ASSIGNED_CLIENT_IDENTIFIER),
		ServerKeepAlive:     time.Duration(intProp(C.MQTT5C_PROP_SERVER_KEEP_ALIVE, 0)) * time.Second,
		SessionExpiry:       time.Duration(intProp(C.MQTT5C_PROP_SESSION_EXPIRY_INTERVAL, 0)) * time.Second,
		ReceiveMaximum:      uint16(intProp(C.MQTT5C_PROP_RECEIVE_MAXIMUM, 65535)),
		MaximumQoS:          QoS(intProp(C.MQTT5C_PROP_MAXIMUM_QOS, 2)),
		RetainAvailable:     intProp(C.MQTT5C_PROP_RETAIN_AVAILABLE, 1) == 1,
		MaximumPacketSize:   intProp(C.MQTT5C_PROP_MAXIMUM_PACKET_SIZE, 0),
		TopicAliasMaximum:   uint16(intProp(C.MQTT5C_PROP_TOPIC_ALIAS_MAXIMUM, 0)),
		ResponseInformation: stringProp(props, C.MQTT5C_PROP_RESPONSE_INFORMATION),
		ServerReference:     stringProp(props, C.MQTT5C_PROP_SERVER_REFERENCE),
		ReasonString:        p.ReasonString,
		UserProperties:      p.UserProperties,
	}
}
