package radius

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/policy"
)

// Upstream checks passwords against other RADIUS servers (often NPS), for
// clients whose first factor is "radius": the PAP password is forwarded
// with a Message-Authenticator, and only their Accept lets the login on to
// the second factor.
type Upstream struct {
	// Servers are tried in order; one that does not answer within Timeout
	// gives way to the next.
	Servers []UpstreamServer
	// Timeout is how long to wait for one server's answer; zero means 5 s.
	Timeout time.Duration
	// NASIdentifier is sent when the gateway sent none, so that the
	// upstream can tell otpgate's requests apart; empty means "otpgate".
	NASIdentifier string
	// Pass, when not nil, are the only attributes of the upstream's
	// Accept passed on to the gateway; nil means all of them but Drop.
	// Message-Authenticator, State, Proxy-State and Reply-Message never
	// are: otpgate sets them itself.
	Pass []dictionary.Key
	// Drop are attributes of the upstream's Accept not passed on.
	Drop []dictionary.Key
}

// UpstreamServer is one upstream RADIUS server.
type UpstreamServer struct {
	Addr   string // host:port
	Secret []byte
}

// CheckPassword asks the upstream servers whether user's password is right,
// sending the gateway's attributes nas with it (NPS's network policies
// match on them), and returns the attributes of the Accept to pass on.
func (u *Upstream) CheckPassword(ctx context.Context, user, password string, nas []dictionary.Attribute) (policy.Identity, error) {
	if user == "" || password == "" {
		return policy.Identity{}, policy.ErrBadPassword
	}
	var errs []error
	for _, s := range u.Servers {
		if err := ctx.Err(); err != nil {
			return policy.Identity{}, err
		}
		resp, err := u.ask(ctx, s, user, password, nas)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", s.Addr, err))
		case resp.Code == radius.CodeAccessAccept:
			return policy.Identity{Reply: u.passed(resp)}, nil
		default: // Access-Reject, or a challenge we cannot answer
			return policy.Identity{}, policy.ErrBadPassword
		}
	}
	return policy.Identity{}, fmt.Errorf("upstream radius: %w", errors.Join(errs...))
}

// passed are the attributes of an upstream's answer to pass on.
func (u *Upstream) passed(p *radius.Packet) []dictionary.Attribute {
	var out []dictionary.Attribute
	for _, a := range attributes(p) {
		if dictionary.Reserved(a.Key) || slices.Contains(u.Drop, a.Key) || u.Pass != nil && !slices.Contains(u.Pass, a.Key) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// ask sends one Access-Request and returns the verified answer.
func (u *Upstream) ask(ctx context.Context, s UpstreamServer, user, password string, nas []dictionary.Attribute) (*radius.Packet, error) {
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := radius.New(radius.CodeAccessRequest, s.Secret)
	if _, err := rand.Read(p.Authenticator[:]); err != nil {
		return nil, err
	}
	var id [1]byte
	rand.Read(id[:])
	p.Identifier = id[0]
	p.Add(typeUserName, radius.Attribute(user))
	pw, err := radius.NewUserPassword([]byte(password), s.Secret, p.Authenticator[:])
	if err != nil {
		return nil, errors.New("password too long")
	}
	p.Add(typeUserPassword, pw)
	named := false
	for _, a := range nas {
		p.Attributes = append(p.Attributes, avpOf(a))
		named = named || a.Key == dictionary.Key{Type: byte(typeNASIdentifier)}
	}
	if !named {
		p.Add(typeNASIdentifier, radius.Attribute(cmp.Or(u.NASIdentifier, "otpgate")))
	}
	p.Add(typeMessageAuthenticator, make(radius.Attribute, 16))
	raw, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	mac := hmac.New(md5.New, s.Secret)
	mac.Write(raw)
	copy(raw[len(raw)-16:], mac.Sum(nil))

	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", s.Addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// Send once, and again each second until an answer or the timeout:
	// UDP may lose the first.
	buf := make([]byte, radius.MaxPacketLength)
	for {
		if _, err := conn.Write(raw); err != nil {
			return nil, err
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if ctx.Err() != nil {
					return nil, fmt.Errorf("no answer within %s", timeout)
				}
				if errors.As(err, &ne) && ne.Timeout() {
					break // resend
				}
				return nil, err
			}
			resp := buf[:n]
			if n < 20 || resp[1] != raw[1] || !radius.IsAuthenticResponse(resp, raw, s.Secret) {
				continue // not the answer to this request
			}
			if err := checkResponseMessageAuthenticator(resp, raw, s.Secret); err != nil {
				return nil, err
			}
			return radius.Parse(resp, s.Secret)
		}
	}
}

// checkResponseMessageAuthenticator verifies a response's
// Message-Authenticator when it has one (RFC 3579 §3.2: computed with the
// request's authenticator).
func checkResponseMessageAuthenticator(resp, req, secret []byte) error {
	b := bytes.Clone(resp)
	copy(b[4:20], req[4:20])
	for a := b[20:]; len(a) >= 2 && int(a[1]) >= 2 && int(a[1]) <= len(a); a = a[a[1]:] {
		if radius.Type(a[0]) != typeMessageAuthenticator {
			continue
		}
		if a[1] != 18 {
			return errors.New("malformed Message-Authenticator in the answer")
		}
		got := bytes.Clone(a[2:18])
		clear(a[2:18])
		mac := hmac.New(md5.New, secret)
		mac.Write(b)
		if !hmac.Equal(got, mac.Sum(nil)) {
			return errors.New("wrong Message-Authenticator in the answer")
		}
		return nil
	}
	return nil
}
