package mqtt5c

/*
#include <stdint.h>
#include <mqtt5c.h>

int mqtt5c_go_set_log(mqtt_client *client, uintptr_t handle, int level);
*/
import "C"

import (
	"context"
	"runtime/cgo"
)

// LogLevel is the severity of one of the client's log lines
// (MQTT5C_LOG_*), most severe first.
type LogLevel int

// The levels of Client.SetLogHandler.
const (
	LogError   LogLevel = C.MQTT5C_LOG_ERROR   // something failed the application should know about
	LogWarning LogLevel = C.MQTT5C_LOG_WARNING // went wrong, the client carries on (a lost connection)
	LogInfo    LogLevel = C.MQTT5C_LOG_INFO    // the connection's life: attempts, successes, disconnects
	LogDebug   LogLevel = C.MQTT5C_LOG_DEBUG   // details
)

func (l LogLevel) String() string {
	switch l {
	case LogError:
		return "ERROR"
	case LogWarning:
		return "WARNING"
	case LogInfo:
		return "INFO"
	case LogDebug:
		return "DEBUG"
	}
	return "LogLevel(?)"
}

// SetLogHandler turns the client's diagnostic lines on: h receives each
// line at level and the more severe ones (LogError fewest, LogDebug
// all). A nil h turns them off, which is the default: the library writes
// nothing anywhere by itself. To send them to the standard logger:
//
//	c.SetLogHandler(mqtt5c.LogInfo, func(l mqtt5c.LogLevel, line string) {
//		log.Printf("mqtt5c %v: %s", l, line)
//	})
//
// A line never contains a password, authentication data or a payload.
//
// h runs on a library thread (the client's callback pool, bound to a Go
// M for the call), one line at a time, in order with the message and
// connection handlers and never on the thread that reads the socket: a
// slow h delays the client's handlers, not its network. Up to 256 lines
// wait for it; more are dropped and counted (Stats().LogDropped). h may
// call any method of the client. An invalid level is an *Error with
// ErrInvalidArgument, and nothing changes.
func (c *Client) SetLogHandler(level LogLevel, h func(LogLevel, string)) error {
	if h != nil {
		c.logMu.Lock()
		prev := c.onLog
		c.onLog = h
		c.logMu.Unlock()
		_, err := c.call(context.Background(), "set log handler", func(*cgoCall) C.int {
			return C.mqtt5c_go_set_log(c.c, C.uintptr_t(c.handle), C.int(level))
		})
		if err != nil {
			c.logMu.Lock()
			c.onLog = prev
			c.logMu.Unlock()
		}
		return err
	}
	_, err := c.call(context.Background(), "set log handler", func(*cgoCall) C.int {
		return C.mqtt_set_log_callback(c.c, nil, nil, nil, 0)
	})
	if err == nil {
		// mqtt_set_log_callback returned: no earlier call of the trampoline runs.
		c.logMu.Lock()
		c.onLog = nil
		c.logMu.Unlock()
	}
	return err
}

//export mqtt5cGoLog
func mqtt5cGoLog(handle C.uintptr_t, level C.int, line *C.char) {
	c, ok := cgo.Handle(handle).Value().(*Client)
	if !ok {
		return
	}
	c.logMu.Lock()
	h := c.onLog
	c.logMu.Unlock()
	if h != nil {
		h(LogLevel(level), C.GoString(line))
	}
}
