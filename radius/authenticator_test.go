package radius

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"layeh.com/radius"
)

var testSecret = []byte("s3cret-for-tests")

// hmacMD5 is RFC 3579 §3.2 written out: HMAC-MD5 keyed with the shared
// secret over the whole packet with the 16 bytes of the
// Message-Authenticator's value (at valueAt) set to zero.
func hmacMD5(raw []byte, valueAt int, secret []byte) []byte {
	scratch := slices.Clone(raw)
	clear(scratch[valueAt : valueAt+16])
	mac := hmac.New(md5.New, secret)
	mac.Write(scratch)
	return mac.Sum(nil)
}

// signRequest appends a Message-Authenticator to the Access-Request p,
// fills it in and returns the wire bytes. p keeps the attribute, so
// p.Encode (which layeh's Client calls) gives the same bytes.
func signRequest(t testing.TB, p *radius.Packet, secret []byte) []byte {
	t.Helper()
	ma := make(radius.Attribute, 16)
	p.Attributes = append(p.Attributes, &radius.AVP{Type: typeMessageAuthenticator, Attribute: ma})
	b, err := p.Encode()
	if err != nil {
		t.Fatalf("encode request: %v", err)
	}
	copy(ma, hmacMD5(b, len(b)-16, secret))
	copy(b[len(b)-16:], ma)
	return b
}

// verifyResponseMA reports whether resp starts its attributes with a
// Message-Authenticator that is right for a response to a request whose
// authenticator was reqAuth: the HMAC runs over the response with the
// request's authenticator in the header (RFC 3579 §3.2).
func verifyResponseMA(resp []byte, reqAuth [16]byte, secret []byte) error {
	if len(resp) < 38 {
		return errors.New("response too short for a Message-Authenticator")
	}
	if resp[20] != byte(typeMessageAuthenticator) || resp[21] != 18 {
		return errors.New("first attribute is not a Message-Authenticator")
	}
	scratch := slices.Clone(resp)
	copy(scratch[4:20], reqAuth[:])
	if want := hmacMD5(scratch, 22, secret); !hmac.Equal(resp[22:38], want) {
		return errors.New("Message-Authenticator does not verify")
	}
	return nil
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testRequest(id byte, attrs ...*radius.AVP) *radius.Packet {
	p := &radius.Packet{Code: radius.CodeAccessRequest, Identifier: id, Secret: testSecret, Attributes: attrs}
	for i := range p.Authenticator {
		p.Authenticator[i] = byte(i*7) + id
	}
	return p
}

func avp(t radius.Type, v string) *radius.AVP {
	return &radius.AVP{Type: t, Attribute: radius.Attribute(v)}
}

// rfc5997Request is the Status-Server of RFC 5997 §6, with shared secret
// "xyzzy5461": its Message-Authenticator is a published known answer.
const rfc5997Request = "0cda00268a54f4686fb394c52866e302185d062350125a665e2e1e8411f3e243822097c84fa3"

func TestHMACMD5KnownAnswer(t *testing.T) {
	raw := mustHex(t, rfc5997Request)
	got := hmacMD5(raw, 22, []byte("xyzzy5461"))
	if want := raw[22:38]; !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x (RFC 5997 §6)", got, want)
	}
}

func TestCheckMessageAuthenticator(t *testing.T) {
	base := func() *radius.Packet {
		return testRequest(42, avp(typeUserName, "alice"), avp(32 /* NAS-Identifier */, "gw1"))
	}
	tests := []struct {
		name   string
		raw    func(t *testing.T) []byte
		secret []byte
		want   error
	}{
		{
			name: "correct, last attribute",
			raw:  func(t *testing.T) []byte { return signRequest(t, base(), testSecret) },
			want: nil,
		},
		{
			name: "correct, first attribute",
			raw: func(t *testing.T) []byte {
				p := base()
				p.Attributes = append(radius.Attributes{{Type: typeMessageAuthenticator, Attribute: make([]byte, 16)}}, p.Attributes...)
				b, _ := p.Encode()
				copy(b[22:38], hmacMD5(b, 22, testSecret))
				return b
			},
			want: nil,
		},
		{
			name:   "RFC 5997 Status-Server",
			raw:    func(t *testing.T) []byte { return mustHex(t, rfc5997Request) },
			secret: []byte("xyzzy5461"),
			want:   nil,
		},
		{
			name:   "RFC 5997 Status-Server, other secret",
			raw:    func(t *testing.T) []byte { return mustHex(t, rfc5997Request) },
			secret: []byte("xyzzy5462"),
			want:   errBadMessageAuthenticator,
		},
		{
			name: "wrong value",
			raw: func(t *testing.T) []byte {
				b := signRequest(t, base(), testSecret)
				b[len(b)-1] ^= 0x01
				return b
			},
			want: errBadMessageAuthenticator,
		},
		{
			name: "signed with another secret",
			raw:  func(t *testing.T) []byte { return signRequest(t, base(), []byte("other")) },
			want: errBadMessageAuthenticator,
		},
		{
			name: "packet changed after signing",
			raw: func(t *testing.T) []byte {
				b := signRequest(t, base(), testSecret)
				b[22] = 'A' // "alice" -> "Alice"
				return b
			},
			want: errBadMessageAuthenticator,
		},
		{
			name: "authenticator changed after signing",
			raw: func(t *testing.T) []byte {
				b := signRequest(t, base(), testSecret)
				b[4] ^= 0xff
				return b
			},
			want: errBadMessageAuthenticator,
		},
		{
			name: "truncated, length 10",
			raw: func(t *testing.T) []byte {
				p := base()
				p.Attributes = append(p.Attributes, &radius.AVP{Type: typeMessageAuthenticator, Attribute: make([]byte, 8)})
				b, _ := p.Encode()
				return b
			},
			want: errBadMessageAuthenticator,
		},
		{
			name: "too long, length 19",
			raw: func(t *testing.T) []byte {
				p := base()
				p.Attributes = append(p.Attributes, &radius.AVP{Type: typeMessageAuthenticator, Attribute: make([]byte, 17)})
				b, _ := p.Encode()
				copy(b[len(b)-17:], hmacMD5(b, len(b)-17, testSecret))
				return b
			},
			want: errBadMessageAuthenticator,
		},
		{
			name: "empty, length 2",
			raw: func(t *testing.T) []byte {
				p := base()
				p.Attributes = append(p.Attributes, &radius.AVP{Type: typeMessageAuthenticator})
				b, _ := p.Encode()
				return b
			},
			want: errBadMessageAuthenticator,
		},
		{
			name: "two, both carrying the right HMAC",
			raw: func(t *testing.T) []byte {
				p := base()
				p.Attributes = append(p.Attributes,
					&radius.AVP{Type: typeMessageAuthenticator, Attribute: make([]byte, 16)},
					&radius.AVP{Type: typeMessageAuthenticator, Attribute: make([]byte, 16)})
				b, _ := p.Encode()
				mac := hmac.New(md5.New, testSecret)
				mac.Write(b) // both values zero
				sum := mac.Sum(nil)
				copy(b[len(b)-34:], sum)
				copy(b[len(b)-16:], sum)
				return b
			},
			want: errBadMessageAuthenticator,
		},
		{
			name: "absent",
			raw: func(t *testing.T) []byte {
				b, _ := base().Encode()
				return b
			},
			want: errNoMessageAuthenticator,
		},
		{
			name: "absent, no attributes at all",
			raw: func(t *testing.T) []byte {
				b, _ := testRequest(1).Encode()
				return b
			},
			want: errNoMessageAuthenticator,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret := tc.secret
			if secret == nil {
				secret = testSecret
			}
			raw := tc.raw(t)
			before := slices.Clone(raw)
			got := checkMessageAuthenticator(raw, secret)
			if !errors.Is(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if !bytes.Equal(raw, before) {
				t.Errorf("checkMessageAuthenticator changed its input: got %x, want %x", raw, before)
			}
		})
	}
}

func TestEncodeResponse(t *testing.T) {
	req := testRequest(9,
		avp(typeUserName, "alice"),
		avp(typeProxyState, "proxy-1"),
		avp(32, "gw1"),
		avp(typeProxyState, "proxy-2"),
	)
	reqWire := signRequest(t, req, testSecret)

	for _, code := range []radius.Code{radius.CodeAccessAccept, radius.CodeAccessReject, radius.CodeAccessChallenge} {
		t.Run(code.String(), func(t *testing.T) {
			attrs := radius.Attributes{
				avp(typeReplyMessage, "hello"),
				avp(typeProxyState, "handler's own"),
				{Type: typeMessageAuthenticator, Attribute: bytes.Repeat([]byte{0xaa}, 16)},
				avp(typeState, "st-1"),
			}
			given := slices.Clone(attrs)
			b, err := encodeResponse(code, attrs, req, testSecret)
			if err != nil {
				t.Fatalf("encodeResponse: %v", err)
			}
			if !slices.Equal(attrs, given) {
				t.Errorf("encodeResponse changed the handler's attributes: got %v, want %v", attrs, given)
			}
			if got := radius.Code(b[0]); got != code {
				t.Errorf("code: got %v, want %v", got, code)
			}
			if got := b[1]; got != req.Identifier {
				t.Errorf("identifier: got %d, want %d", got, req.Identifier)
			}
			if got := int(b[2])<<8 | int(b[3]); got != len(b) {
				t.Errorf("length field: got %d, want %d", got, len(b))
			}
			if err := verifyResponseMA(b, req.Authenticator, testSecret); err != nil {
				t.Errorf("Message-Authenticator: %v", err)
			}
			if !radius.IsAuthenticResponse(b, reqWire, testSecret) {
				t.Errorf("Response Authenticator does not verify with radius.IsAuthenticResponse")
			}
			if radius.IsAuthenticResponse(b, reqWire, []byte("other")) {
				t.Errorf("Response Authenticator verifies with the wrong secret")
			}

			p, err := radius.Parse(b, testSecret)
			if err != nil {
				t.Fatalf("parse response: %v", err)
			}
			var gotTypes []radius.Type
			var gotProxy []string
			for _, a := range p.Attributes {
				gotTypes = append(gotTypes, a.Type)
				if a.Type == typeProxyState {
					gotProxy = append(gotProxy, string(a.Attribute))
				}
			}
			wantTypes := []radius.Type{typeMessageAuthenticator, typeReplyMessage, typeState, typeProxyState, typeProxyState}
			if !slices.Equal(gotTypes, wantTypes) {
				t.Errorf("attribute types: got %v, want %v", gotTypes, wantTypes)
			}
			if want := []string{"proxy-1", "proxy-2"}; !slices.Equal(gotProxy, want) {
				t.Errorf("Proxy-State: got %q, want %q", gotProxy, want)
			}
			if got := string(p.Get(typeReplyMessage)); got != "hello" {
				t.Errorf("Reply-Message: got %q, want %q", got, "hello")
			}
		})
	}
}

func TestEncodeResponseWithoutProxyState(t *testing.T) {
	req := testRequest(3, avp(typeUserName, "bob"))
	reqWire, _ := req.Encode()
	b, err := encodeResponse(radius.CodeAccessReject, nil, req, testSecret)
	if err != nil {
		t.Fatalf("encodeResponse: %v", err)
	}
	if got, want := len(b), 20+18; got != want {
		t.Errorf("length: got %d, want %d (header and Message-Authenticator only)", got, want)
	}
	if err := verifyResponseMA(b, req.Authenticator, testSecret); err != nil {
		t.Errorf("Message-Authenticator: %v", err)
	}
	if !radius.IsAuthenticResponse(b, reqWire, testSecret) {
		t.Errorf("Response Authenticator does not verify")
	}
}

func TestEncodeResponseTooLarge(t *testing.T) {
	req := testRequest(3)
	_, err := encodeResponse(radius.CodeAccessAccept,
		radius.Attributes{{Type: typeReplyMessage, Attribute: make([]byte, 254)}}, req, testSecret)
	if err == nil {
		t.Errorf("got no error for a 254-byte attribute, want one")
	}
}

// The pooled MACs give what a fresh HMAC-MD5 gives, for each secret, also
// when secrets alternate and goroutines share the pools.
func TestMacMD5MatchesHMAC(t *testing.T) {
	secrets := [][]byte{testSecret, []byte("s3cret"), []byte("s3cret-for-tests2"), bytes.Repeat([]byte{'k'}, 100), {}}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				secret := secrets[(g+i)%len(secrets)]
				msg := bytes.Repeat([]byte{byte(i)}, i)
				ref := hmac.New(md5.New, secret)
				ref.Write(msg)
				want := ref.Sum(nil)
				got := macMD5(secret, msg[:i/2], msg[i/2:])
				if !bytes.Equal(got[:], want) {
					t.Errorf("secret %q, message of %d bytes: got %x, want %x", secret, i, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// encodeWithLayeh is how responses were encoded before encodeResponse
// wrote them itself: through layeh's Packet.MarshalBinary.
func encodeWithLayeh(t *testing.T, code radius.Code, attrs radius.Attributes, req *radius.Packet, secret []byte) []byte {
	t.Helper()
	var all radius.Attributes
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
	size := 20
	for _, a := range all {
		size += 2 + len(a.Attribute)
	}
	for i := len(all) - 1; i >= 0 && size > radius.MaxPacketLength; i-- {
		if all[i].Type == typeReplyMessage {
			size -= 2 + len(all[i].Attribute)
			all = append(all[:i:i], all[i+1:]...)
		}
	}
	p := &radius.Packet{Code: code, Identifier: req.Identifier, Authenticator: req.Authenticator, Attributes: all}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil
	}
	if withMA {
		sum := macMD5(secret, b)
		copy(b[22:38], sum[:])
	}
	h := md5.New()
	h.Write(b)
	h.Write(secret)
	copy(b[4:20], h.Sum(nil))
	return b
}

func TestEncodeResponseAsLayeh(t *testing.T) {
	// Byte for byte what layeh's encoder made, for answers with texts
	// long enough to be cut and proxy chains long enough to need room.
	secret := []byte("s3cret")
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 3000 {
		req := radius.New(radius.CodeAccessRequest, secret)
		req.Identifier = byte(i)
		if i%7 == 0 {
			req.Code = radius.CodeAccountingRequest
		}
		for range r.IntN(20) {
			req.Add(typeProxyState, bytes.Repeat([]byte{byte(i)}, 1+r.IntN(253)))
		}
		var attrs radius.Attributes
		for range r.IntN(40) {
			typ := []radius.Type{typeReplyMessage, typeState, 25, typeProxyState, typeMessageAuthenticator}[r.IntN(5)]
			attrs.Add(typ, bytes.Repeat([]byte{'x'}, r.IntN(254)))
		}
		code := []radius.Code{radius.CodeAccessAccept, radius.CodeAccessChallenge, radius.CodeAccessReject, radius.CodeAccountingResponse}[r.IntN(4)]
		want := encodeWithLayeh(t, code, attrs, req, secret)
		got, err := encodeResponse(code, attrs, req, secret)
		if want == nil {
			if err == nil {
				t.Fatalf("case %d: layeh refused it, encodeResponse made %d bytes", i, len(got))
			}
			continue
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("case %d: got %x (%v), want %x", i, got, err, want)
		}
	}
}
