package radius

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/policy"
)

// passwordServer is an upstream that accepts alice with "right".
func passwordServer(t *testing.T) string {
	c := loopbackClient(t, "127.0.0.1:0")
	c.RequireMessageAuthenticator = true // the upstream insists, as NPS can
	h := startServer(t, "127.0.0.1:0", &Server{Clients: NewClients([]*Client{c}), Handler: HandlerFunc(
		func(_ context.Context, r *Request) *Response {
			pw, err := radius.UserPassword(r.Get(typeUserPassword), c.Secret, r.Authenticator[:])
			if err == nil && string(r.Get(typeUserName)) == "alice" && string(pw) == "right" && string(r.Get(typeNASIdentifier)) == "otpgate" {
				return &Response{Code: radius.CodeAccessAccept}
			}
			return &Response{Code: radius.CodeAccessReject}
		})})
	return h.addr
}

// silentAddr is a UDP address where nothing answers.
func silentAddr(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

func TestUpstream(t *testing.T) {
	good := UpstreamServer{Addr: passwordServer(t), Secret: testSecret}
	silent := UpstreamServer{Addr: silentAddr(t), Secret: testSecret}
	wrongSecret := UpstreamServer{Addr: good.Addr, Secret: []byte("not the secret")}
	tests := []struct {
		name     string
		servers  []UpstreamServer
		user, pw string
		want     error // nil, ErrBadPassword, or any other error (errOther)
	}{
		{"right password", []UpstreamServer{good}, "alice", "right", nil},
		{"wrong password", []UpstreamServer{good}, "alice", "wrong", policy.ErrBadPassword},
		{"empty password is not even sent", []UpstreamServer{silent}, "alice", "", policy.ErrBadPassword},
		{"first server silent: the next answers", []UpstreamServer{silent, good}, "alice", "right", nil},
		{"all silent", []UpstreamServer{silent, silent}, "alice", "right", errOther},
		{"answers under another secret are not believed", []UpstreamServer{wrongSecret}, "alice", "right", errOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &Upstream{Servers: tt.servers, Timeout: 300 * time.Millisecond}
			_, err := u.CheckPassword(context.Background(), tt.user, tt.pw, nil)
			switch {
			case tt.want == errOther:
				if err == nil || errors.Is(err, policy.ErrBadPassword) {
					t.Errorf("got %v, want an error that is not ErrBadPassword", err)
				}
				if err != nil && strings.Contains(err.Error(), tt.pw) {
					t.Errorf("error %q holds the password", err)
				}
			case !errors.Is(err, tt.want) && !(err == nil && tt.want == nil):
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

var errOther = errors.New("any other error")

// TestUpstreamAttributes: the gateway's attributes go upstream (its own
// NAS-Identifier instead of otpgate's), and of the upstream's Accept all
// is passed on but what otpgate sets itself, Drop, and what Pass leaves
// out; a vendor's attributes one by one.
func TestUpstreamAttributes(t *testing.T) {
	c := loopbackClient(t, "127.0.0.1:0")
	var got *radius.Packet
	var mu sync.Mutex
	h := startServer(t, "127.0.0.1:0", &Server{Clients: NewClients([]*Client{c}), Handler: HandlerFunc(
		func(_ context.Context, r *Request) *Response {
			mu.Lock()
			got = r.Packet
			mu.Unlock()
			resp := &Response{Code: radius.CodeAccessAccept}
			resp.Attributes.Add(typeClass, radius.Attribute("nps-1"))
			resp.Attributes.Add(11, radius.Attribute("admins")) // Filter-Id
			resp.Attributes.Add(typeReplyMessage, radius.Attribute("hello from upstream"))
			resp.Attributes.Add(typeState, radius.Attribute("upstream state"))
			resp.Attributes.Add(typeSessionTimeout, integer(3600))
			// Two Fortinet attributes in one Vendor-Specific.
			resp.Attributes.Add(typeVendorSpecific, radius.Attribute("\x00\x00\x30\x44\x01\x06vpn1\x03\x05vd1"))
			return resp
		})})
	nas := []dictionary.Attribute{
		{Key: dictionary.Key{Type: byte(typeNASIdentifier)}, Value: []byte("forti1")},
		{Key: dictionary.Key{Type: byte(typeCallingStationID)}, Value: []byte("203.0.113.5")},
	}
	key := func(name string) dictionary.Key {
		d, err := dictionary.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		return d.Key()
	}
	tests := []struct {
		name       string
		pass, drop []dictionary.Key
		want       []string
	}{
		{"all", nil, nil, []string{"Class=nps-1", "Filter-Id=admins", "Session-Timeout=\x00\x00\x0e\x10", "Fortinet-Group-Name=vpn1", "Fortinet-Vdom-Name=vd1"}},
		{"drop", nil, []dictionary.Key{key("Session-Timeout"), key("Fortinet-Vdom-Name")}, []string{"Class=nps-1", "Filter-Id=admins", "Fortinet-Group-Name=vpn1"}},
		{"pass", []dictionary.Key{key("Fortinet-Group-Name"), key("Reply-Message")}, nil, []string{"Fortinet-Group-Name=vpn1"}},
		{"pass none", []dictionary.Key{}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &Upstream{Servers: []UpstreamServer{{Addr: h.addr, Secret: c.Secret}}, Timeout: time.Second, Pass: tt.pass, Drop: tt.drop}
			id, err := u.CheckPassword(context.Background(), "alice", "pw", nas)
			if err != nil {
				t.Fatal(err)
			}
			var have []string
			for _, a := range id.Reply {
				have = append(have, dictionary.Name(a.Key)+"="+string(a.Value))
			}
			if !slices.Equal(have, tt.want) {
				t.Errorf("passed on: got %q, want %q", have, tt.want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if v := values(got.Attributes, typeNASIdentifier); !slices.Equal(v, []string{"forti1"}) {
		t.Errorf("NAS-Identifier upstream: got %q, want the gateway's alone", v)
	}
	if v := values(got.Attributes, typeCallingStationID); !slices.Equal(v, []string{"203.0.113.5"}) {
		t.Errorf("Calling-Station-Id upstream: got %q", v)
	}
}
