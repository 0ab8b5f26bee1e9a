package mqtt5c

/*
#include <stdint.h>
#include <mqtt5c.h>
*/
import "C"

import "context"

// Stat names one of a client's counters (MQTT5C_STAT_*), cumulative over
// all its connections. The header documents each.
type Stat int

// The counters of the C header.
const (
	StatReceiveMaximumExceeded Stat = C.MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED
	StatInboundInflightPeak    Stat = C.MQTT5C_STAT_INBOUND_INFLIGHT_PEAK
	StatDeliveryQueuePeak      Stat = C.MQTT5C_STAT_DELIVERY_QUEUE_PEAK
	StatQoS0Dropped            Stat = C.MQTT5C_STAT_QOS0_DROPPED
	StatQueued                 Stat = C.MQTT5C_STAT_QUEUED
	StatQueueDropped           Stat = C.MQTT5C_STAT_QUEUE_DROPPED
	StatQueueExpired           Stat = C.MQTT5C_STAT_QUEUE_EXPIRED
	StatQueueLength            Stat = C.MQTT5C_STAT_QUEUE_LENGTH
	StatResubscribeFailed      Stat = C.MQTT5C_STAT_RESUBSCRIBE_FAILED
	StatDeliveryQueuePeakBytes Stat = C.MQTT5C_STAT_DELIVERY_QUEUE_PEAK_BYTES
)

// Stat reads one counter. It does not block. A counter this binding has
// no constant for is read by its C value: c.Stat(mqtt5c.Stat(n)).
func (c *Client) Stat(s Stat) (uint64, error) {
	var v C.uint64_t
	_, err := c.call(context.Background(), "stat", func(*cgoCall) C.int {
		return C.mqtt_client_get_stat(c.c, C.int(s), &v)
	})
	return uint64(v), err
}
