package radius

import (
	"context"
	"strings"
	"unicode/utf8"

	"layeh.com/radius"

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

// response is the answer that carries a decision.
func response(res policy.Result) *Response {
	resp := &Response{Code: radius.CodeAccessReject}
	switch res.Decision {
	case policy.Accept:
		resp.Code = radius.CodeAccessAccept
	case policy.Challenge:
		resp.Code = radius.CodeAccessChallenge
	}
	if res.Message != "" {
		resp.Attributes.Add(typeReplyMessage, radius.Attribute(truncate(res.Message, maxAttr)))
	}
	if res.State != "" {
		resp.Attributes.Add(typeState, radius.Attribute(res.State))
	}
	return resp
}

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

// truncate shortens s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
