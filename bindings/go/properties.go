package mqtt5c

/*
#include <stdlib.h>
#include <mqtt5c.h>
*/
import "C"

import "unsafe"

// UserProperty is one MQTT v5 User Property: a key/value pair. A list may
// hold the same key several times; the order is kept.
type UserProperty struct {
	Key, Value string
}

// Properties are the MQTT v5 properties of a message (and of a
// subscribe, a will or a disconnect). The zero value sends none. On a
// received message each field holds what the broker sent, empty when
// absent. The library checks which properties a packet allows: a field
// that does not belong (ReasonString on a publish, say) makes the call
// fail with ErrInvalidArgument and a text naming the property.
type Properties struct {
	// PayloadFormatUTF8 is the Payload Format Indicator: the payload is UTF-8 text.
	PayloadFormatUTF8 bool
	// MessageExpiry is the Message Expiry Interval in seconds (0: none).
	MessageExpiry uint32
	// ContentType is a MIME type ("application/json").
	ContentType string
	// ResponseTopic is where a request's response goes.
	ResponseTopic string
	// CorrelationData ties a response to its request (nil: none).
	CorrelationData []byte
	// UserProperties are sent in order.
	UserProperties []UserProperty
	// SubscriptionIdentifiers: on a received message, one per matching
	// subscription; on a subscribe, at most one (the identifier to give it).
	SubscriptionIdentifiers []uint32
	// ReasonString: received on acknowledgements and disconnects.
	ReasonString string
}

// toC builds a C property list for one call (freed after it); nil and an
// empty struct give NULL. The status is a failing setter's, else OK.
func (p *Properties) toC(cc *cgoCall) (*C.mqtt_properties, C.int) {
	if p == nil || p.empty() {
		return nil, C.MQTT5C_OK
	}
	props := C.mqtt_properties_new()
	if props == nil {
		return nil, C.MQTT5C_ERR_INTERNAL
	}
	cc.afterCall(func() { C.mqtt_properties_free(props) })
	setInt := func(id C.int, v uint32) C.int { return C.mqtt_properties_set_int(props, id, C.uint32_t(v)) }
	setString := func(id C.int, v string) C.int { return C.mqtt_properties_set_string(props, id, cc.cstring(v)) }
	steps := []func() C.int{}
	if p.PayloadFormatUTF8 {
		steps = append(steps, func() C.int { return setInt(C.MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR, 1) })
	}
	if p.MessageExpiry != 0 {
		steps = append(steps, func() C.int { return setInt(C.MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, p.MessageExpiry) })
	}
	for _, id := range p.SubscriptionIdentifiers {
		id := id
		steps = append(steps, func() C.int { return setInt(C.MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, id) })
	}
	if p.ContentType != "" {
		steps = append(steps, func() C.int { return setString(C.MQTT5C_PROP_CONTENT_TYPE, p.ContentType) })
	}
	if p.ResponseTopic != "" {
		steps = append(steps, func() C.int { return setString(C.MQTT5C_PROP_RESPONSE_TOPIC, p.ResponseTopic) })
	}
	if p.ReasonString != "" {
		steps = append(steps, func() C.int { return setString(C.MQTT5C_PROP_REASON_STRING, p.ReasonString) })
	}
	if p.CorrelationData != nil {
		steps = append(steps, func() C.int {
			return C.mqtt_properties_set_binary(props, C.MQTT5C_PROP_CORRELATION_DATA,
				cBytes(cc, p.CorrelationData), C.size_t(len(p.CorrelationData)))
		})
	}
	for _, up := range p.UserProperties {
		up := up
		steps = append(steps, func() C.int {
			return C.mqtt_properties_add_user(props, cc.cstring(up.Key), cc.cstring(up.Value))
		})
	}
	for _, step := range steps {
		if rc := step(); rc != C.MQTT5C_OK {
			return nil, rc
		}
	}
	return props, C.MQTT5C_OK
}

func (p *Properties) empty() bool {
	return !p.PayloadFormatUTF8 && p.MessageExpiry == 0 && p.ContentType == "" &&
		p.ResponseTopic == "" && p.CorrelationData == nil && len(p.UserProperties) == 0 &&
		len(p.SubscriptionIdentifiers) == 0 && p.ReasonString == ""
}

// cBytes is a C copy of b freed after the call (NULL for an empty b), for
// data the library keeps no pointer to but which must not move.
func cBytes(cc *cgoCall, b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	p := C.CBytes(b)
	cc.afterCall(func() { C.free(p) })
	return p
}

// propertiesFromC copies a C property list (borrowed) into Go memory.
func propertiesFromC(props *C.mqtt_properties) Properties {
	var p Properties
	if props == nil {
		return p
	}
	var v C.uint32_t
	if C.mqtt_properties_get_int(props, C.MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR, &v) == C.MQTT5C_OK {
		p.PayloadFormatUTF8 = v == 1
	}
	if C.mqtt_properties_get_int(props, C.MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, &v) == C.MQTT5C_OK {
		p.MessageExpiry = uint32(v)
	}
	n := C.mqtt_properties_count(props, C.MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER)
	for i := C.size_t(0); i < n; i++ {
		if C.mqtt_properties_get_int_at(props, C.MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, i, &v) == C.MQTT5C_OK {
			p.SubscriptionIdentifiers = append(p.SubscriptionIdentifiers, uint32(v))
		}
	}
	p.ContentType = stringProp(props, C.MQTT5C_PROP_CONTENT_TYPE)
	p.ResponseTopic = stringProp(props, C.MQTT5C_PROP_RESPONSE_TOPIC)
	p.ReasonString = stringProp(props, C.MQTT5C_PROP_REASON_STRING)
	var length C.size_t
	if data := C.mqtt_properties_get_binary(props, C.MQTT5C_PROP_CORRELATION_DATA, &length); data != nil {
		p.CorrelationData = C.GoBytes(data, C.int(length))
	}
	n = C.mqtt_properties_count(props, C.MQTT5C_PROP_USER_PROPERTY)
	for i := C.size_t(0); i < n; i++ {
		var key, value *C.char
		if C.mqtt_properties_user_at(props, i, &key, &value) == C.MQTT5C_OK {
			p.UserProperties = append(p.UserProperties, UserProperty{C.GoString(key), C.GoString(value)})
		}
	}
	return p
}

func stringProp(props *C.mqtt_properties, id C.int) string {
	var length C.size_t
	s := C.mqtt_properties_get_string_len(props, id, &length)
	if s == nil {
		return ""
	}
	return C.GoStringN(s, C.int(length))
}
