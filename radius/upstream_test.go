package radius

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"

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
