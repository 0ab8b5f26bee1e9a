package mqtt5c

/*
#include <stdlib.h>
#include <stdint.h>
#include <mqtt5c.h>
*/
import "C"

import (
	"errors"
	"runtime/cgo"
)

// ConnectAttempt is what Options.BeforeConnect receives before each
// connection attempt (each server Connect tries, each attempt of a
// reconnection). It is valid only during the call.
type ConnectAttempt struct {
	URL     string          // where the attempt goes, scheme canonical, port shown
	Attempt int             // from 1 for each Connect and each reconnection
	live    *attemptOptions // shared by copies, emptied when the callback returns
}

type attemptOptions struct{ opts *C.mqtt_options }

// errAttemptOver: a ConnectAttempt kept past its callback.
var errAttemptOver = errors.New("mqtt5c: ConnectAttempt used after BeforeConnect returned")

// SetCredentials sets the user name and password of this attempt and the
// later ones: the place for a token that expires between reconnects.
func (a *ConnectAttempt) SetCredentials(username string, password []byte) error {
	if a.live == nil || a.live.opts == nil {
		return errAttemptOver
	}
	_, err := run("set credentials", func(cc *cgoCall) C.int {
		return C.mqtt_options_set_credentials(a.live.opts, cc.cstringOrNil(username),
			bytesPtr(password), C.size_t(len(password)))
	})
	return err
}

// SetUserProperties replaces the CONNECT user properties of this attempt
// and the later ones.
func (a *ConnectAttempt) SetUserProperties(props []UserProperty) error {
	if a.live == nil || a.live.opts == nil {
		return errAttemptOver
	}
	_, err := run("set connect properties", func(cc *cgoCall) C.int {
		p, rc := (&Properties{UserProperties: props}).toC(cc)
		if rc != C.MQTT5C_OK {
			return rc
		}
		return C.mqtt_options_set_connect_properties(a.live.opts, p)
	})
	return err
}

// ErrSkipAttempt, returned by Options.BeforeConnect, skips the attempt
// (the next server, or the next round of a reconnection, comes next). Any
// other non-nil error skips it too.
var ErrSkipAttempt = errors.New("mqtt5c: connection attempt skipped")

//export mqtt5cGoPreConnect
func mqtt5cGoPreConnect(handle C.uintptr_t, url *C.char, attempt C.uint, opts *C.mqtt_options) C.int {
	c, ok := cgo.Handle(handle).Value().(*Client)
	if !ok || c.beforeConnect == nil {
		return 0
	}
	live := &attemptOptions{opts}
	defer func() { live.opts = nil }()
	a := &ConnectAttempt{URL: C.GoString(url), Attempt: int(attempt), live: live}
	if c.beforeConnect(a) != nil {
		return 1
	}
	return 0
}
