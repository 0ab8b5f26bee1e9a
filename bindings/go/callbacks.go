package mqtt5c

/*
#include <stdint.h>
#include <mqtt5c.h>
*/
import "C"

import "runtime/cgo"

// Event is a change of the connection's state.
type Event int

// The events of Options.OnConnection.
const (
	EventConnected         Event = C.MQTT5C_EVENT_CONNECTED          // Code: the CONNACK reason (0)
	EventDisconnected      Event = C.MQTT5C_EVENT_DISCONNECTED       // Code: the reason code, or a negative ErrorCode
	EventReconnecting      Event = C.MQTT5C_EVENT_RECONNECTING       // Code: the attempt's number, from 1
	EventResubscribeFailed Event = C.MQTT5C_EVENT_RESUBSCRIBE_FAILED // Code: the SUBACK refusal or error
)

// ConnectionEvent is what Options.OnConnection receives.
type ConnectionEvent struct {
	Event Event
	Code  int
	// Text: for EventResubscribeFailed, mqtt_last_error() (the filter
	// and the broker's reason string); else "".
	Text string
}

// The exported trampolines below run on a library thread (never the one
// reading the socket): cgo binds that thread to a Go M for the call, and
// the handler runs there, one at a time per client, in the order the
// broker sent the messages. user_data is the integer value of a
// cgo.Handle to a *Client or a *route.

//export mqtt5cGoMessage
func mqtt5cGoMessage(handle C.uintptr_t, m *C.mqtt_message) {
	var h func(*Message)
	switch v := cgo.Handle(handle).Value().(type) {
	case *Client:
		h = v.onMessage
	case *route:
		h = v.get()
	}
	if h != nil {
		h(messageFromC(m))
	}
}

//export mqtt5cGoConnection
func mqtt5cGoConnection(handle C.uintptr_t, event C.int, code C.int) {
	if c, ok := cgo.Handle(handle).Value().(*Client); ok && c.onConnection != nil {
		ev := ConnectionEvent{Event: Event(event), Code: int(code)}
		if ev.Event == EventResubscribeFailed {
			// Still on the callback's own thread: its text.
			ev.Text = C.GoString(C.mqtt_last_error())
		}
		c.onConnection(ev)
	}
}

// messageFromC copies a received message (valid only during the callback).
func messageFromC(m *C.mqtt_message) *Message {
	var n C.size_t
	p := C.mqtt_message_payload(m, &n)
	payload := []byte{}
	if p != nil && n > 0 {
		payload = C.GoBytes(p, C.int(n))
	}
	return &Message{
		Topic:      C.GoString(C.mqtt_message_topic(m)),
		Payload:    payload,
		QoS:        QoS(C.mqtt_message_qos(m)),
		Retain:     bool(C.mqtt_message_retain(m)),
		Dup:        bool(C.mqtt_message_dup(m)),
		AckID:      uint64(C.mqtt_message_ack_id(m)),
		Properties: propertiesFromC(C.mqtt_message_properties(m)),
	}
}
