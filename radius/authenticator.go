package radius

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sync"

	"layeh.com/radius"
)

// Errors from checking a request's Message-Authenticator.
var (
	errNoMessageAuthenticator  = errors.New("missing Message-Authenticator")
	errBadMessageAuthenticator = errors.New("wrong Message-Authenticator")
)

// checkMessageAuthenticator verifies the Message-Authenticator of a request
// (RFC 3579 §3.2): HMAC-MD5 with the shared secret over the packet with the
// attribute's value zeroed. raw must be exactly the packet's length. It
// returns errNoMessageAuthenticator when the attribute is absent.
func checkMessageAuthenticator(raw, secret []byte) error {
	at, count := -1, 0
	for i := 20; i+2 <= len(raw); {
		l := int(raw[i+1])
		if l < 2 || i+l > len(raw) {
			return errBadMessageAuthenticator
		}
		if radius.Type(raw[i]) == typeMessageAuthenticator {
			if l != 18 {
				return errBadMessageAuthenticator
			}
			at = i + 2
			count++
		}
		i += l
	}
	switch {
	case count == 0:
		return errNoMessageAuthenticator
	case count > 1:
		return errBadMessageAuthenticator
	}
	var zero [16]byte
	sum := macMD5(secret, raw[:at], zero[:], raw[at+16:])
	if !hmac.Equal(sum[:], raw[at:at+16]) {
		return errBadMessageAuthenticator
	}
	return nil
}

// keyedMACs holds, per shared secret, HMAC-MD5 hashes keyed with it and
// ready for use, so that a request does not set one up (and allocate it)
// twice. A secret stays while the process runs; there are as many as
// gateways ever configured.
var keyedMACs struct {
	sync.RWMutex
	pools map[string]*sync.Pool
}

// macMD5 is HMAC-MD5 under secret of the parts, one after the other.
func macMD5(secret []byte, parts ...[]byte) [md5.Size]byte {
	keyedMACs.RLock()
	p := keyedMACs.pools[string(secret)]
	keyedMACs.RUnlock()
	if p == nil {
		key := bytes.Clone(secret)
		p = &sync.Pool{New: func() any { return hmac.New(md5.New, key) }}
		keyedMACs.Lock()
		if keyedMACs.pools == nil {
			keyedMACs.pools = make(map[string]*sync.Pool)
		}
		if q := keyedMACs.pools[string(key)]; q != nil {
			p = q
		} else {
			keyedMACs.pools[string(key)] = p
		}
		keyedMACs.Unlock()
	}
	mac := p.Get().(hash.Hash)
	for _, b := range parts {
		mac.Write(b)
	}
	var sum [md5.Size]byte
	mac.Sum(sum[:0])
	mac.Reset()
	p.Put(mac)
	return sum
}

// fit keeps a response within the 4096 bytes a RADIUS packet may have: a
// text too long for what room is left after the other attributes (a proxy
// chain's Proxy-States take their share) loses its last Reply-Messages.
// Nothing else is dropped; a packet still too long fails to encode.
// size is what the packet takes besides attrs.
func fit(attrs []*radius.AVP, size int) []*radius.AVP {
	for _, a := range attrs {
		size += 2 + len(a.Attribute)
	}
	for i := len(attrs) - 1; i >= 0 && size > radius.MaxPacketLength; i-- {
		if attrs[i].Type == typeReplyMessage {
			size -= 2 + len(attrs[i].Attribute)
			attrs = slices.Delete(attrs, i, i+1)
		}
	}
	return attrs
}

// md5s are MD5 hashes for the Response Authenticator.
var md5s = sync.Pool{New: func() any { return md5.New() }}

// encodeResponse writes a response to req: Message-Authenticator first, then
// the response's own attributes, then every Proxy-State of the request in
// order (RFC 2865 §5.33), and finally the Response Authenticator.
func encodeResponse(code radius.Code, attrs radius.Attributes, req *radius.Packet, secret []byte) ([]byte, error) {
	// Accounting answers need none, and FreeRADIUS computes theirs over a
	// zeroed authenticator: leave it out there.
	withMA := !(code == radius.CodeAccountingResponse && req.Code == radius.CodeAccountingRequest)
	var room [16]*radius.AVP // the attributes after Message-Authenticator; most answers have a few
	all := room[:0]
	for _, a := range attrs {
		if a.Type != typeMessageAuthenticator && a.Type != typeProxyState {
			all = append(all, a)
		}
	}
	for _, a := range req.Attributes {
		if a.Type == typeProxyState {
			all = append(all, a)
		}
	}
	size := 20
	if withMA {
		size += 18
	}
	all = fit(all, size)
	for _, a := range all {
		if len(a.Attribute) > maxAttr {
			return nil, fmt.Errorf("encode response: attribute %d is %d bytes, more than %d", a.Type, len(a.Attribute), maxAttr)
		}
		size += 2 + len(a.Attribute)
	}
	if size > radius.MaxPacketLength {
		return nil, fmt.Errorf("encode response: %d bytes, more than %d", size, radius.MaxPacketLength)
	}
	// Written straight into the bytes that are sent and kept for
	// retransmissions. The header carries the request authenticator, as
	// both hashes need.
	b := make([]byte, 20, size)
	b[0], b[1] = byte(code), req.Identifier
	binary.BigEndian.PutUint16(b[2:4], uint16(size))
	copy(b[4:20], req.Authenticator[:])
	if withMA {
		b = append(b, byte(typeMessageAuthenticator), 18)
		b = append(b, make([]byte, 16)...)
	}
	for _, a := range all {
		b = append(b, byte(a.Type), byte(2+len(a.Attribute)))
		b = append(b, a.Attribute...)
	}
	if withMA {
		sum := macMD5(secret, b)
		copy(b[22:38], sum[:]) // the first attribute's value
	}
	h := md5s.Get().(hash.Hash)
	h.Write(b)
	h.Write(secret)
	var sum [md5.Size]byte
	h.Sum(sum[:0])
	copy(b[4:20], sum[:])
	h.Reset()
	md5s.Put(h)
	return b, nil
}
