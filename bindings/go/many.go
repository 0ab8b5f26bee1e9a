package mqtt5c

/*
#include <stdlib.h>
#include <mqtt5c.h>
*/
import "C"

import (
	"context"
	"unsafe"
)

// cArray is a C array of n elements of T freed after the call: arrays
// of C pointers must not live in Go memory.
func cArray[T any](cc *cgoCall, n int) []T {
	var zero T
	p := C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(zero)))
	cc.afterCall(func() { C.free(p) })
	return unsafe.Slice((*T)(p), n)
}

// SubscribeMany subscribes to several filters in one SUBSCRIBE; their
// messages go to Options.OnMessage (a filter that had a Subscribe handler
// goes back to it). Each Subscription's Properties are ignored: props
// applies to the whole SUBSCRIBE. The reason codes come in the order of
// subs, also when some were refused: the error is then the first
// refusal, its text naming the filter.
func (c *Client) SubscribeMany(ctx context.Context, subs []Subscription, props *Properties) ([]ReasonCode, error) {
	if len(subs) == 0 {
		return nil, &Error{Op: "subscribe", Code: int(ErrInvalidArgument), Text: "no filters to subscribe to"}
	}
	results := make([]ReasonCode, len(subs))
	_, err := c.call(ctx, "subscribe", func(cc *cgoCall) C.int {
		p, rc := props.toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		filters, options, res := cArray[*C.char](cc, len(subs)), cArray[C.int](cc, len(subs)), cArray[C.int](cc, len(subs))
		for i := range subs {
			filters[i], options[i] = cc.cstring(subs[i].Filter), subs[i].options()
		}
		rc = C.mqtt_subscribe_many(c.c, &filters[0], &options[0], C.size_t(len(subs)), p, &res[0])
		if rc >= 0 {
			for i := range res {
				results[i] = ReasonCode(res[i])
			}
		}
		return rc
	})
	if err != nil && !written(err) {
		return nil, err
	}
	return results, err
}

// UnsubscribeMany unsubscribes from several filters in one UNSUBSCRIBE
// (their Subscribe handlers end too); reason codes as SubscribeMany's.
func (c *Client) UnsubscribeMany(ctx context.Context, filters []string, props *Properties) ([]ReasonCode, error) {
	if len(filters) == 0 {
		return nil, &Error{Op: "unsubscribe", Code: int(ErrInvalidArgument), Text: "no filters to unsubscribe from"}
	}
	results := make([]ReasonCode, len(filters))
	_, err := c.call(ctx, "unsubscribe", func(cc *cgoCall) C.int {
		p, rc := props.toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		cfilters, res := cArray[*C.char](cc, len(filters)), cArray[C.int](cc, len(filters))
		for i, f := range filters {
			cfilters[i] = cc.cstring(f)
		}
		rc = C.mqtt_unsubscribe_many(c.c, &cfilters[0], C.size_t(len(filters)), p, &res[0])
		if rc >= 0 {
			for i := range res {
				results[i] = ReasonCode(res[i])
			}
		}
		return rc
	})
	if err != nil && !written(err) {
		return nil, err
	}
	return results, err
}

// written: the reason codes were filled in (a refusal, not an error).
func written(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code >= 0x80
}
