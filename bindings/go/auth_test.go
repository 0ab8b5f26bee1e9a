package mqtt5c

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// A scripted broker for what mosquitto will not do without a plugin:
// MQTT v5 enhanced authentication (one challenge, then success). It
// speaks just enough of the protocol: whole packets by their remaining
// length, and the Authentication Method (0x15) and Data (0x16) properties.

func writePacket(w io.Writer, first byte, body []byte) error {
	pkt := []byte{first}
	for n := len(body); ; {
		b := byte(n % 128)
		if n /= 128; n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	_, err := w.Write(append(pkt, body...))
	return err
}

func readPacket(r *bufio.Reader) (byte, []byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, shift := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n |= int(b&0x7F) << shift
		if b&0x80 == 0 {
			break
		}
		shift += 7
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return first, body, err
}

// authProps encodes a property block with the method and data.
func authProps(method string, data []byte) []byte {
	var p []byte
	p = append(p, 0x15)
	p = binary.BigEndian.AppendUint16(p, uint16(len(method)))
	p = append(p, method...)
	p = append(p, 0x16)
	p = binary.BigEndian.AppendUint16(p, uint16(len(data)))
	p = append(p, data...)
	return append([]byte{byte(len(p))}, p...) // < 128 bytes here
}

// authData finds the Authentication Data in an AUTH body (reason code,
// then properties of 2-byte-length values only, as our client sends).
func authData(body []byte) (reason byte, data []byte, err error) {
	if len(body) < 2 {
		return 0, nil, fmt.Errorf("short AUTH % x", body)
	}
	reason, props := body[0], body[2:]
	for len(props) >= 3 {
		id, n := props[0], int(binary.BigEndian.Uint16(props[1:3]))
		if 3+n > len(props) {
			break
		}
		if id == 0x16 {
			data = props[3 : 3+n]
		}
		props = props[3+n:]
	}
	return reason, data, nil
}

type scriptedAuth struct {
	ln   net.Listener
	errs chan error
	got  chan []byte // the client's answer to the challenge
	last chan byte   // the first byte of the packet after CONNACK (0xE0: DISCONNECT)
	conn sync.WaitGroup
}

func startScriptedAuth(t *testing.T) *scriptedAuth {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedAuth{ln: ln, errs: make(chan error, 4), got: make(chan []byte, 1), last: make(chan byte, 1)}
	t.Cleanup(func() { ln.Close(); s.conn.Wait() })
	s.conn.Add(1)
	go func() {
		defer s.conn.Done()
		c, err := ln.Accept()
		if err != nil {
			s.errs <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(wait))
		r := bufio.NewReader(c)
		if first, body, err := readPacket(r); err != nil || first != 0x10 || !bytes.Contains(body, []byte("client-first")) {
			s.errs <- fmt.Errorf("CONNECT: %#x % x %v", first, body, err)
			return
		}
		challenge := append([]byte{0x18}, authProps("TEST", []byte("server-challenge"))...)
		if err := writePacket(c, 0xF0, challenge); err != nil {
			s.errs <- err
			return
		}
		first, body, err := readPacket(r)
		if err != nil || first != 0xF0 {
			s.errs <- fmt.Errorf("AUTH: %#x %v", first, err)
			return
		}
		reason, data, err := authData(body)
		if err != nil || reason != 0x18 {
			s.errs <- fmt.Errorf("AUTH reason %#x: %v", reason, err)
			return
		}
		s.got <- data
		connack := append([]byte{0, 0}, authProps("TEST", []byte("server-final"))...)
		if err := writePacket(c, 0x20, connack); err != nil {
			s.errs <- err
			return
		}
		if first, _, err := readPacket(r); err == nil {
			s.last <- first
		}
	}()
	return s
}

func (s *scriptedAuth) url() string { return "mqtt://" + s.ln.Addr().String() }

func TestEnhancedAuthExchange(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refuse=%v", refuse), func(t *testing.T) {
			s := startScriptedAuth(t)
			var mu sync.Mutex // the library orders the calls; the race detector cannot see C's
			var steps []AuthStep
			c := newClient(t, &Options{AuthMethod: "TEST", AuthData: []byte("client-first"),
				OnAuth: func(step AuthStep) ([]byte, error) {
					mu.Lock()
					defer mu.Unlock()
					steps = append(steps, step)
					if step.Reason == ReasonContinueAuthentication {
						return []byte("client-proof"), nil
					}
					if refuse {
						return nil, ReasonCode(0x87)
					}
					return nil, nil
				}})
			err := c.Connect(bg, s.url())
			select {
			case e := <-s.errs:
				t.Fatalf("scripted broker: %v (Connect: %v)", e, err)
			case answer := <-s.got:
				if string(answer) != "client-proof" {
					t.Fatalf("answer to the challenge %q", answer)
				}
			case <-time.After(wait):
				t.Fatalf("the scripted broker got no answer (Connect: %v)", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(steps) != 2 || steps[0].Reason != 0x18 || string(steps[0].Data) != "server-challenge" ||
				steps[0].Method != "TEST" || steps[1].Reason != 0 || string(steps[1].Data) != "server-final" {
				t.Fatalf("steps %+v", steps)
			}
			if !refuse {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				return
			}
			if !errors.Is(err, ReasonCode(0x87)) {
				t.Fatalf("Connect with the success refused: %v", err)
			}
			select {
			case first := <-s.last:
				if first != 0xE0 {
					t.Fatalf("after the refused success the client sent %#x, not DISCONNECT", first)
				}
			case <-time.After(wait):
				t.Fatal("no DISCONNECT after the refused success")
			}
		})
	}
}
