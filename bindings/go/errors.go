package mqtt5c

/*
#cgo pkg-config: mqtt5c
#include <stdlib.h>
#include <mqtt5c.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// ErrorCode is one of the library's own negative return codes
// (MQTT5C_ERR_*). It is an error, so errors.Is(err, mqtt5c.ErrTimeout)
// tells what went wrong without looking at the text.
type ErrorCode int

// The library's error codes, with the C header's values.
const (
	ErrInvalidArgument  ErrorCode = C.MQTT5C_ERR_INVALID_ARGUMENT
	ErrNotConnected     ErrorCode = C.MQTT5C_ERR_NOT_CONNECTED
	ErrConnectionLost   ErrorCode = C.MQTT5C_ERR_CONNECTION_LOST
	ErrTimeout          ErrorCode = C.MQTT5C_ERR_TIMEOUT
	ErrIO               ErrorCode = C.MQTT5C_ERR_IO
	ErrProtocol         ErrorCode = C.MQTT5C_ERR_PROTOCOL
	ErrPacketTooLarge   ErrorCode = C.MQTT5C_ERR_PACKET_TOO_LARGE
	ErrInternal         ErrorCode = C.MQTT5C_ERR_INTERNAL
	ErrNotFound         ErrorCode = C.MQTT5C_ERR_NOT_FOUND
	ErrTLS              ErrorCode = C.MQTT5C_ERR_TLS
	ErrAlreadyConnected ErrorCode = C.MQTT5C_ERR_ALREADY_CONNECTED
	ErrBadState         ErrorCode = C.MQTT5C_ERR_BAD_STATE
	ErrQueueFull        ErrorCode = C.MQTT5C_ERR_QUEUE_FULL
	ErrExpired          ErrorCode = C.MQTT5C_ERR_EXPIRED
	ErrPersistence      ErrorCode = C.MQTT5C_ERR_PERSISTENCE
)

// Error is the library's static text for the code (mqtt_strerror).
func (e ErrorCode) Error() string { return "mqtt5c: " + strerror(int(e)) }

// ReasonCode is an MQTT v5 reason code sent by the broker. Below 0x80 it
// means success (0x00, a granted QoS 1 or 2, 0x10 no matching subscribers,
// 0x11 no subscription existed) and calls return it with a nil error; from
// 0x80 on it is a refusal and calls return an *Error wrapping it, so that
// errors.Is(err, mqtt5c.ReasonCode(0x87)) works.
type ReasonCode byte

// A few reason codes that calls return with a nil error.
const (
	ReasonSuccess              ReasonCode = 0x00
	ReasonGrantedQoS1          ReasonCode = 0x01
	ReasonGrantedQoS2          ReasonCode = 0x02
	ReasonNoMatchingSubscriber ReasonCode = 0x10
	ReasonNoSubscriptionExists ReasonCode = 0x11
)

// Failed reports whether the code is a refusal (0x80 and above).
func (r ReasonCode) Failed() bool { return r >= 0x80 }

// Error is the library's static text for the reason code.
func (r ReasonCode) Error() string {
	return fmt.Sprintf("mqtt5c: reason code 0x%02X: %s", byte(r), strerror(int(r)))
}

// ErrClosed is returned by every call made after Close started.
var ErrClosed = errors.New("mqtt5c: client closed")

// Error is what a failing call returns: the operation, the return code
// of the C function, and mqtt_last_error()'s detail, read on the thread
// that made the call. It unwraps to an ErrorCode (negative codes) or a
// ReasonCode (a broker refusal), for errors.Is; errors.As gives the text.
type Error struct {
	Op   string // the call that failed: "connect", "publish", ...
	Code int    // what the C function returned: a negative MQTT5C_ERR_* or a reason code >= 0x80
	Text string // mqtt_last_error(): the specific detail, one line ("" if the library gave none)
}

// Reason is the broker's reason code when Code is one (>= 0x80), else 0.
func (e *Error) Reason() ReasonCode {
	if e.Code >= 0x80 && e.Code <= 0xFF {
		return ReasonCode(e.Code)
	}
	return 0
}

func (e *Error) Error() string {
	s := fmt.Sprintf("mqtt5c: %s: %s", e.Op, strerror(e.Code))
	if e.Code > 0 {
		s = fmt.Sprintf("mqtt5c: %s: reason code 0x%02X (%s)", e.Op, e.Code, strerror(e.Code))
	}
	switch {
	case e.Text == "":
	case strings.HasPrefix(e.Text, strerror(e.Code)):
		// The text usually starts with the code's own words: once is enough.
		s = fmt.Sprintf("mqtt5c: %s: %s", e.Op, e.Text)
	default:
		s += ": " + e.Text
	}
	return s
}

// Unwrap gives the ErrorCode or ReasonCode behind the error.
func (e *Error) Unwrap() error {
	if e.Code < 0 {
		return ErrorCode(e.Code)
	}
	return ReasonCode(e.Code)
}

func strerror(rc int) string { return C.GoString(C.mqtt_strerror(C.int(rc))) }

func succeeded(rc C.int) bool { return bool(C.mqtt_succeeded(rc)) }

// cgoCall is one sequence of cgo calls that ends with a library call
// whose failure text must be read: mqtt_last_error() is per OS thread, so
// the sequence runs with the goroutine locked to its thread, the text is
// read right after the failing call, and what the sequence allocated is
// freed only after that (a later library call could replace the text).
type cgoCall struct {
	cleanups []func()
}

// nulInString stops a call whose string argument holds a NUL byte: C
// would read it cut short there (MQTT strings cannot contain U+0000).
type nulInString struct{ at int }

// cstring is C.CString freed after the call; a string with a NUL byte
// ends the call before any library function sees it (see run).
func (cc *cgoCall) cstring(s string) *C.char {
	if strings.IndexByte(s, 0) >= 0 {
		panic(nulInString{strings.IndexByte(s, 0)})
	}
	p := C.CString(s)
	cc.cleanups = append(cc.cleanups, func() { C.free(unsafe.Pointer(p)) })
	return p
}

// cstringOrNil is cstring, or NULL for "".
func (cc *cgoCall) cstringOrNil(s string) *C.char {
	if s == "" {
		return nil
	}
	return cc.cstring(s)
}

// afterCall runs f once the call and the reading of its error text are done.
func (cc *cgoCall) afterCall(f func()) { cc.cleanups = append(cc.cleanups, f) }

// run calls f on a locked OS thread; a status that is not a success
// (mqtt_succeeded) becomes an *Error carrying mqtt_last_error().
func run(op string, f func(cc *cgoCall) C.int) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cc := &cgoCall{}
	defer func() {
		for i := len(cc.cleanups) - 1; i >= 0; i-- {
			cc.cleanups[i]()
		}
	}()
	rc, err := cc.invoke(op, f)
	if err == nil && !succeeded(rc) {
		err = &Error{Op: op, Code: int(rc), Text: C.GoString(C.mqtt_last_error())}
	}
	return int(rc), err
}

// invoke calls f, turning a nulInString stop into ErrInvalidArgument.
func (cc *cgoCall) invoke(op string, f func(cc *cgoCall) C.int) (rc C.int, err error) {
	defer func() {
		if r := recover(); r != nil {
			nul, ok := r.(nulInString)
			if !ok {
				panic(r)
			}
			rc = C.MQTT5C_ERR_INVALID_ARGUMENT
			// Not the string itself: it may be a secret (a header value).
			err = &Error{Op: op, Code: int(rc), Text: fmt.Sprintf("a string argument contains a NUL byte (at byte %d); MQTT strings cannot", nul.at)}
		}
	}()
	return f(cc), nil
}
