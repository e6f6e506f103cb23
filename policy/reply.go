package policy

import (
	"context"
	"slices"
	"strings"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/store"
)

// classKey is Class (RFC 2865 §5.25), which the gateway sends back in its
// accounting: an Accept carries one that names the login.
var classKey = dictionary.Key{Type: 25}

// withReply gives an Accept the attributes the gateway is to act on (see
// replyFor); a held login's, once it is accepted. id is what the first
// factor said of the user.
func (e *Engine) withReply(ctx context.Context, res Result, req Request, t *Tenant, u store.User, id Identity) Result {
	if res.Wait != nil {
		return e.withReplyLater(ctx, res, req, t, u, id)
	}
	if res.Decision == Accept {
		res.Reply = e.replyFor(ctx, req, t, u, res.Method, id)
	}
	return res
}

// withReplyLater is withReply for a held login. It is a function of its
// own because the closure keeps req and u: in withReply itself they would
// be moved to the heap on every call, held or not (and so it is not
// inlined there either).
//
//go:noinline
func (e *Engine) withReplyLater(ctx context.Context, res Result, req Request, t *Tenant, u store.User, id Identity) Result {
	wait := res.Wait
	res.Wait = func() Result { return e.withReply(ctx, wait(), req, t, u, id) }
	return res
}

// replyFor resolves the attributes of an Accept. The sources, from the
// least to the most specific, are: the upstream server's Accept, the
// tenant's reply_attributes, its group_replies for the user's directory
// groups, the client's reply_attributes, and the user's own. An attribute
// a source sets replaces what the sources before it set for that
// attribute; within one source every value is kept (a user may be in
// several groups).
func (e *Engine) replyFor(ctx context.Context, req Request, t *Tenant, u store.User, method string, id Identity) []dictionary.Attribute {
	vars := dictionary.Vars{User: u.Name, Tenant: t.Name, Method: method}
	if vars.User == "" {
		vars.User = store.NormalizeName(req.User)
	}
	fill := func(rs []dictionary.Reply) []dictionary.Attribute {
		out := make([]dictionary.Attribute, 0, len(rs))
		for _, r := range rs {
			out = append(out, r.Attribute(vars))
		}
		return out
	}
	var own []dictionary.Reply
	if len(u.Reply) > 0 {
		var err error
		if own, err = dictionary.ParseList(u.Reply); err != nil {
			e.log.WarnContext(ctx, "a reply attribute of the user is not valid; it is left out", "user", u.Name, "err", err)
		}
	}
	// What the upstream hid for otpgate alone, or its EAP, is not the
	// gateway's (see dictionary.Unpassable).
	upstream := slices.DeleteFunc(slices.Clone(id.Reply), func(a dictionary.Attribute) bool { return dictionary.Unpassable(a.Key) })
	var out []dictionary.Attribute
	for _, src := range [][]dictionary.Attribute{upstream, fill(t.Reply), fill(groupReplies(t, id.Groups)), fill(req.Reply), fill(own)} {
		out = override(out, src)
	}
	return out
}

// override returns base with every attribute src sets replaced by src's.
func override(base, src []dictionary.Attribute) []dictionary.Attribute {
	if len(src) == 0 {
		return base
	}
	out := slices.DeleteFunc(slices.Clone(base), func(a dictionary.Attribute) bool {
		return slices.ContainsFunc(src, func(b dictionary.Attribute) bool { return a.Key == b.Key })
	})
	return append(out, src...)
}

// groupReplies are the replies t maps the groups to.
func groupReplies(t *Tenant, groups []string) []dictionary.Reply {
	var out []dictionary.Reply
	for _, g := range groups {
		out = append(out, t.GroupReplies[strings.ToLower(g)]...)
	}
	return out
}

// inGroup reports whether one of groups is among want (both directory
// names as the directory package writes them; case does not count).
func inGroup(groups, want []string) bool {
	for _, g := range groups {
		if slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(g, w) }) {
			return true
		}
	}
	return false
}

// withClass gives an Accept a Class that names the login, unless it has
// one, and returns it: the gateway sends it back in its accounting, which
// the audit log then joins to the login.
func (e *Engine) withClass(res *Result) error {
	for _, a := range res.Reply {
		if a.Key == classKey {
			res.Class = string(a.Value)
			return nil
		}
	}
	id, err := e.newState()
	if err != nil {
		return err
	}
	res.Class = "otpgate:" + id
	res.Reply = append(res.Reply, dictionary.Attribute{Key: classKey, Value: []byte(res.Class)})
	return nil
}
