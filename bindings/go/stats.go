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

// Stats is all of a client's counters at once (mqtt5c_stats; the header
// documents each field), cumulative over its connections except the
// "now" ones (the in-flight counts and queue lengths). The by-QoS arrays
// are indexed by QoS: MessagesSent[1] is the QoS 1 messages sent. Each
// counter is exact; together they are not one instant's snapshot. Size
// is the bytes the library filled: an older library leaves the fields it
// does not know 0.
type Stats struct {
	Size                   uint64
	MessagesSent           [3]uint64
	PayloadBytesSent       [3]uint64
	MessagesReceived       [3]uint64
	PayloadBytesReceived   [3]uint64
	Reconnects             uint64
	ReconnectAttempts      uint64
	OutboundInFlight       uint64
	InboundInFlight        uint64
	OfflineQueueLength     uint64
	Queued                 uint64
	QueueDropped           uint64
	QueueExpired           uint64
	QoS0Dropped            uint64
	DeliveryQueueLength    uint64
	DeliveryQueuePeak      uint64
	DeliveryQueuePeakBytes uint64
	ReceiveMaximumExceeded uint64
	InboundInflightPeak    uint64
	ResubscribeFailed      uint64
	Writes                 uint64
	LogDropped             uint64
}

// Stats reads every counter (mqtt_client_get_stats). It does not block.
func (c *Client) Stats() (Stats, error) {
	var s C.mqtt5c_stats
	_, err := c.call(context.Background(), "stats", func(*cgoCall) C.int {
		return C.mqtt_client_get_stats(c.c, &s, C.size_t(C.sizeof_mqtt5c_stats))
	})
	if err != nil {
		return Stats{}, err
	}
	q := func(a [3]C.uint64_t) [3]uint64 { return [3]uint64{uint64(a[0]), uint64(a[1]), uint64(a[2])} }
	return Stats{
		Size:                   uint64(s.size),
		MessagesSent:           q(s.messages_sent),
		PayloadBytesSent:       q(s.payload_bytes_sent),
		MessagesReceived:       q(s.messages_received),
		PayloadBytesReceived:   q(s.payload_bytes_received),
		Reconnects:             uint64(s.reconnects),
		ReconnectAttempts:      uint64(s.reconnect_attempts),
		OutboundInFlight:       uint64(s.outbound_in_flight),
		InboundInFlight:        uint64(s.inbound_in_flight),
		OfflineQueueLength:     uint64(s.offline_queue_length),
		Queued:                 uint64(s.queued),
		QueueDropped:           uint64(s.queue_dropped),
		QueueExpired:           uint64(s.queue_expired),
		QoS0Dropped:            uint64(s.qos0_dropped),
		DeliveryQueueLength:    uint64(s.delivery_queue_length),
		DeliveryQueuePeak:      uint64(s.delivery_queue_peak),
		DeliveryQueuePeakBytes: uint64(s.delivery_queue_peak_bytes),
		ReceiveMaximumExceeded: uint64(s.receive_maximum_exceeded),
		InboundInflightPeak:    uint64(s.inbound_inflight_peak),
		ResubscribeFailed:      uint64(s.resubscribe_failed),
		Writes:                 uint64(s.writes),
		LogDropped:             uint64(s.log_dropped),
	}, nil
}
