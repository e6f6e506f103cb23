package radius

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/policy"
)

// maxAttr is the most bytes one attribute's value can hold.
const maxAttr = 253

// Decider decides a login; *policy.Engine is one.
type Decider interface {
	Decide(ctx context.Context, req policy.Request) policy.Result
}

// Decide is the Handler that turns an Access-Request into a policy
// decision and the decision into Access-Accept, -Reject or -Challenge.
func Decide(d Decider) Handler {
	return HandlerFunc(func(ctx context.Context, r *Request) *Response {
		c := r.Client
		req := policy.Request{
			Client:         c.Name,
			Tenant:         c.Tenant,
			FirstFactor:    c.FirstFactor,
			User:           c.UserName(string(r.Get(typeUserName))),
			State:          string(r.Get(typeState)),
			NoChallenge:    c.NoChallenge,
			Hold:           c.Hold,
			CodeInPassword: c.CodeInPassword,
			CodeSeparator:  c.CodeSeparator,
			Machine:        machineName(r.Packet),
			Reply:          c.Reply,
		}
		if c.FirstFactor == policy.FirstFactorRADIUS {
			req.NAS = nasAttributes(r.Packet)
		}
		if pw, ok := r.Lookup(typeUserPassword); ok {
			plain, err := radius.UserPassword(pw, c.Secret, r.Authenticator[:])
			if err != nil {
				return &Response{Code: radius.CodeAccessReject}
			}
			req.Password = string(plain)
		}
		if c.ClientIP != nil {
			req.IP = c.ClientIP(r.Packet)
		}
		res := d.Decide(ctx, req)
		if res.Wait != nil { // held for approval: park it, free the worker
			return &Response{Later: func() *Response { return response(res.Wait()) }}
		}
		return response(res)
	})
}

// response is the answer that carries a decision; nil (no answer) for
// one another node answers (policy.Result.Unanswered).
func response(res policy.Result) *Response {
	if res.Unanswered {
		return nil
	}
	resp := &Response{Code: radius.CodeAccessReject}
	switch res.Decision {
	case policy.Accept:
		resp.Code = radius.CodeAccessAccept
	case policy.Challenge:
		resp.Code = radius.CodeAccessChallenge
	}
	for _, part := range split(res.Message, maxAttr) {
		resp.Attributes.Add(typeReplyMessage, radius.Attribute(part))
	}
	if res.State != "" {
		resp.Attributes.Add(typeState, radius.Attribute(res.State))
	}
	if res.Decision == policy.Accept {
		for _, a := range res.Reply {
			if !dictionary.Reserved(a.Key) {
				resp.Attributes = append(resp.Attributes, avpOf(a))
			}
		}
	}
	if res.Decision == policy.Challenge {
		// How long the gateway should wait for the answer (RFC 2865
		// §5.27), and whether to show what the user types (§5.42).
		if secs := res.Timeout / time.Second; secs > 0 {
			resp.Attributes.Add(typeSessionTimeout, integer(uint32(min(secs, math.MaxUint32))))
		}
		echo := uint32(0)
		if res.Echo {
			echo = 1
		}
		resp.Attributes.Add(typePrompt, integer(echo))
	}
	return resp
}

// integer is the value of an attribute of type integer (RFC 2865 §5).
func integer(v uint32) radius.Attribute { return binary.BigEndian.AppendUint32(nil, v) }

// Accounter records sessions; *policy.Engine is one.
type Accounter interface {
	Account(ctx context.Context, s policy.Session)
}

// Account is the Server.Accounting that records each Accounting-Request.
func Account(a Accounter) func(ctx context.Context, r *Request) {
	return func(ctx context.Context, r *Request) {
		s := policy.Session{
			Client: r.Client.Name,
			User:   r.Client.UserName(string(r.Get(typeUserName))),
			ID:     string(r.Get(typeAcctSessionID)),
			Class:  string(r.Get(typeClass)),
		}
		if v := r.Get(typeAcctStatusType); len(v) == 4 {
			s.Status = int(v[0])<<24 | int(v[1])<<16 | int(v[2])<<8 | int(v[3])
		}
		if r.Client.ClientIP != nil {
			s.IP = r.Client.ClientIP(r.Packet)
		}
		a.Account(ctx, s)
	}
}

// Microsoft's vendor number and its MS-Machine-Name attribute, which RD
// Gateway fills with the end user's computer name.
const (
	vendorMicrosoft = 311
	msMachineName   = 50
)

// machineName returns MS-Machine-Name, or "".
func machineName(p *radius.Packet) string {
	return strings.TrimSpace(string(vendorValue(p, vendorMicrosoft, msMachineName)))
}

// split cuts s into parts of at most n bytes that, put together, give s
// again: a text too long for one Reply-Message goes over several (RFC 2865
// §5.18), which clients show in order. A part ends after a space where
// there is one in its second half, so that a client that shows each part
// on a line of its own breaks between words, and never inside a UTF-8
// character. n must be at least utf8.UTFMax.
func split(s string, n int) []string {
	var parts []string
	for len(s) > n {
		cut := n
		for cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
			cut-- // back to the start of the character cut through
		}
		if !utf8.RuneStart(s[cut]) {
			cut = n // not UTF-8 here: any cut will do
		}
		if sp := strings.LastIndexByte(s[:cut], ' '); sp >= n/2 {
			cut = sp + 1
		}
		parts = append(parts, s[:cut])
		s = s[cut:]
	}
	if s != "" {
		parts = append(parts, s)
	}
	return parts
}
