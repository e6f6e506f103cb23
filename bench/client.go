package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// sharedSecret is the secret both servers share with the load generator.
const sharedSecret = "testing123"

// typeMessageAuthenticator is RFC 3579's Message-Authenticator.
const typeMessageAuthenticator = 80

// errTimeout is a request that got no answer within the timeout.
var errTimeout = errors.New("no answer")

// conn is one load loop's own UDP socket to one server.
type conn struct {
	udp     *net.UDPConn
	secret  []byte
	timeout time.Duration // how long to wait for an answer
	buf     []byte
	id      byte            // the next request's identifier: in turn, as clients do
	rtts    []time.Duration // the round trips answered since the caller last emptied it
}

func dial(addr string, timeout time.Duration) (*conn, error) {
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	udp, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &conn{udp: udp, secret: []byte(sharedSecret), timeout: timeout, buf: make([]byte, radius.MaxPacketLength)}, nil
}

func (c *conn) close() { c.udp.Close() }

// exchange sends one Access-Request and returns the answer to it. Answers
// to earlier requests that arrive late (after their timeout) are skipped:
// an answer must carry the request's identifier and a Response
// Authenticator computed over the request's authenticator.
func (c *conn) exchange(user, password, ip string, state []byte) (*radius.Packet, error) {
	raw, err := accessRequest(c.secret, c.id, user, password, ip, state)
	if err != nil {
		return nil, err
	}
	c.id++
	sent := time.Now()
	if _, err := c.udp.Write(raw); err != nil {
		return nil, err
	}
	if err := c.udp.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	for {
		n, err := c.udp.Read(c.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errTimeout
		}
		if err != nil {
			return nil, err
		}
		resp := c.buf[:n]
		if n < 20 || resp[1] != raw[1] || !radius.IsAuthenticResponse(resp, raw, c.secret) {
			continue
		}
		c.rtts = append(c.rtts, time.Since(sent))
		return radius.Parse(bytes.Clone(resp), c.secret)
	}
}

// accessRequest encodes an Access-Request with a Message-Authenticator, its
// last attribute: HMAC-MD5 over the packet with the value zeroed.
func accessRequest(secret []byte, id byte, user, password, ip string, state []byte) ([]byte, error) {
	p := radius.New(radius.CodeAccessRequest, secret) // a random Request Authenticator
	p.Identifier = id
	if err := rfc2865.UserName_SetString(p, user); err != nil {
		return nil, err
	}
	if err := rfc2865.UserPassword_SetString(p, password); err != nil {
		return nil, err
	}
	if err := rfc2865.CallingStationID_SetString(p, ip); err != nil {
		return nil, err
	}
	if state != nil {
		if err := rfc2865.State_Set(p, state); err != nil {
			return nil, err
		}
	}
	p.Add(typeMessageAuthenticator, make([]byte, 16))
	raw, err := p.Encode()
	if err != nil {
		return nil, err
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(raw)
	copy(raw[len(raw)-16:], mac.Sum(nil))
	return raw, nil
}

// expect checks an answer's code.
func expect(p *radius.Packet, want radius.Code, step string) error {
	if p.Code != want {
		return fmt.Errorf("%s: got %s %q, want %s", step, p.Code, rfc2865.ReplyMessage_GetString(p), want)
	}
	return nil
}
