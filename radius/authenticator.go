package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"

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
	scratch := make([]byte, len(raw))
	copy(scratch, raw)
	clear(scratch[at : at+16])
	mac := hmac.New(md5.New, secret)
	mac.Write(scratch)
	if !hmac.Equal(mac.Sum(nil), raw[at:at+16]) {
		return errBadMessageAuthenticator
	}
	return nil
}

// encodeResponse writes a response to req: Message-Authenticator first, then
// the response's own attributes, then every Proxy-State of the request in
// order (RFC 2865 §5.33), and finally the Response Authenticator.
func encodeResponse(code radius.Code, attrs radius.Attributes, req *radius.Packet, secret []byte) ([]byte, error) {
	all := make(radius.Attributes, 0, len(attrs)+2)
	// Accounting answers need none, and FreeRADIUS computes theirs over a
	// zeroed authenticator: leave it out there.
	withMA := !(code == radius.CodeAccountingResponse && req.Code == radius.CodeAccountingRequest)
	if withMA {
		all = append(all, &radius.AVP{Type: typeMessageAuthenticator, Attribute: make([]byte, 16)})
	}
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
	p := &radius.Packet{Code: code, Identifier: req.Identifier, Authenticator: req.Authenticator, Attributes: all}
	b, err := p.MarshalBinary() // header carries the request authenticator, as both hashes need
	if err != nil {
		return nil, err
	}
	if int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
		return nil, errors.New("encode response: length mismatch")
	}
	if withMA {
		mac := hmac.New(md5.New, secret)
		mac.Write(b)
		copy(b[22:38], mac.Sum(nil)) // the first attribute's value
	}
	h := md5.New()
	h.Write(b)
	h.Write(secret)
	copy(b[4:20], h.Sum(nil))
	return b, nil
}
