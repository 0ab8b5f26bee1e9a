package mqtt5c_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"mqtt5c"
)

// A client that subscribes with a handler, publishes at QoS 1 with v5
// properties, and tells a success reason code from a refusal.
func Example() {
	ctx := context.Background()
	c, err := mqtt5c.NewClient(&mqtt5c.Options{
		ClientID:  "example",
		Reconnect: &mqtt5c.Reconnect{MinDelay: time.Second, MaxDelay: 30 * time.Second},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx, "mqtt://127.0.0.1:1883"); err != nil {
		var e *mqtt5c.Error
		if errors.As(err, &e) {
			log.Fatalf("connect: code %d, reason 0x%02X: %s", e.Code, byte(e.Reason()), e.Text)
		}
		log.Fatal(err)
	}
	_, err = c.Subscribe(ctx, "example/#", mqtt5c.QoS1, func(m *mqtt5c.Message) {
		// On a library thread; blocking calls on c are allowed here.
		fmt.Println(m.Topic, string(m.Payload), m.Properties.ContentType)
	})
	if err != nil {
		log.Fatal(err)
	}
	rc, err := c.Publish(ctx, &mqtt5c.Message{
		Topic:   "example/hello",
		Payload: []byte("hi"),
		QoS:     mqtt5c.QoS1,
		Properties: mqtt5c.Properties{
			ContentType:    "text/plain",
			UserProperties: []mqtt5c.UserProperty{{Key: "k", Value: "v"}},
		},
	})
	switch {
	case errors.Is(err, mqtt5c.ErrTimeout):
		log.Print("no PUBACK in time; the message may still be delivered")
	case err != nil:
		log.Fatal(err)
	case rc == mqtt5c.ReasonNoMatchingSubscriber:
		log.Print("delivered to nobody (a success)")
	}
	_ = c.Disconnect(ctx)
}
