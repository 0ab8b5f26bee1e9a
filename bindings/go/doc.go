// Package mqtt5c is the Go binding of libmqtt5c, an MQTT v5.0 client
// library with a C API (include/mqtt5c.h, whose comments are the reference
// for what each call does, blocks on and returns). It uses cgo and finds
// the library with pkg-config (package mqtt5c).
//
// # Calls block
//
// Connect, Publish (QoS 1 and 2: until acknowledged), Subscribe,
// Unsubscribe and Disconnect block the calling goroutine until the broker
// answered or the library's own timeout passed (Options.ConnectTimeout,
// Options.OperationTimeout). They take a context: one that is already done
// fails the call at once; one that ends while the call waits makes the
// method return ctx.Err() at once, but the library call goes on in the
// background (a QoS 1 message may still be delivered) until it completes
// or times out. Close waits for such calls.
//
// # Callbacks: which thread, and what they may do
//
// Handlers (Options.OnMessage, Subscribe handlers, Options.OnConnection)
// run on a thread of the library, never the one reading the socket: cgo
// runs the Go handler on that thread (an M locked to it for the call).
// A client's handlers run one at a time, in the order the broker sent the
// messages, so a slow handler delays the next. A handler may call any
// method of its client, blocking ones included (a QoS 1 Publish from a
// message handler waits for its PUBACK while the library keeps reading),
// and Close. A panic in a handler crashes the program, as in any goroutine.
// A received *Message is the handler's to keep.
//
// # Errors
//
// A failing call returns an *Error with the C return code, the operation
// and the library's detail (mqtt_last_error(), read on the thread that
// made the call, which is why each call runs locked to its OS thread). It
// unwraps to an ErrorCode (ErrTimeout, ErrInvalidArgument, ...) or, for a
// broker refusal, a ReasonCode: errors.Is(err, mqtt5c.ErrTimeout),
// errors.Is(err, mqtt5c.ReasonCode(0x87)), errors.As(err, &e). Reason
// codes below 0x80 (0x10 no matching subscribers, a granted QoS) are
// successes: they are returned as values with a nil error.
//
// # Memory
//
// The library never holds a Go pointer: its callbacks' user_data is the
// integer value of a runtime/cgo.Handle, deleted by Close. A Client that
// is never closed is never collected.
package mqtt5c
