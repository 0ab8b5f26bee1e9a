package mqtt5c

/*
#include <stdlib.h>
#include <stdint.h>
#include <mqtt5c.h>
*/
import "C"

import (
	"context"
	"errors"
	"runtime/cgo"
	"unsafe"
)

// AuthStep is one step of MQTT v5 enhanced authentication, given to
// Options.OnAuth: a challenge (Reason 0x18, continue authentication) to
// answer, or the broker's success (Reason 0) with its final data (nil
// when it sent none) to accept or refuse. A method that authenticates
// the server too (SCRAM's server signature) must refuse a success
// without its proof.
type AuthStep struct {
	Reason ReasonCode
	Method string
	Data   []byte
}

// ReasonContinueAuthentication is the reason code of a challenge.
const ReasonContinueAuthentication ReasonCode = 0x18

//export mqtt5cGoAuth
func mqtt5cGoAuth(handle C.uintptr_t, reason C.int, method *C.char, data unsafe.Pointer, length C.size_t, response *C.mqtt_auth_response) C.int {
	c, ok := cgo.Handle(handle).Value().(*Client)
	if !ok || c.onAuth == nil {
		return 0x80
	}
	step := AuthStep{Reason: ReasonCode(reason), Method: C.GoString(method)}
	if data != nil {
		step.Data = C.GoBytes(data, C.int(length))
	}
	answer, err := c.onAuth(step)
	if err != nil {
		var code ReasonCode
		if errors.As(err, &code) && code.Failed() {
			return C.int(code)
		}
		return 0x80
	}
	if len(answer) > 0 {
		p := C.CBytes(answer) // copied by the library, which wipes its copies
		defer C.free(p)
		if C.mqtt_auth_response_set_data(response, p, C.size_t(len(answer))) != C.MQTT5C_OK {
			return 0x80
		}
	}
	return 0
}

// Reauthenticate starts an enhanced re-authentication on the live
// connection with data (Options.AuthMethod must be set): OnAuth answers
// the broker's challenges meanwhile, on a library thread. It returns nil
// when the broker accepted; a refusal (after which the connection is
// closed) or an abort of OnAuth is an *Error with its reason code. Not
// from OnAuth itself.
func (c *Client) Reauthenticate(ctx context.Context, data []byte, props *Properties) error {
	_, err := c.call(ctx, "reauthenticate", func(cc *cgoCall) C.int {
		p, rc := props.toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		return C.mqtt_reauthenticate(c.c, cBytes(cc, data), C.size_t(len(data)), p)
	})
	return err
}
