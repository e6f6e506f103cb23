package radius

import (
	"context"
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
			Client:      c.Name,
			Tenant:      c.Tenant,
			FirstFactor: c.FirstFactor,
			User:        c.UserName(string(r.Get(typeUserName))),
			State:       string(r.Get(typeState)),
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
	})
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
