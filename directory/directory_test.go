package directory

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/directory/ldaptest"
	"github.com/otpgate/otpgate/policy"
)

func TestCheckPassword(t *testing.T) {
	s := ldaptest.Start(t)
	bind := "uid={user},ou=people,dc=example,dc=com"
	down := ldaptest.ClosedURL(t)
	search := Config{SearchBase: "ou=people,dc=example,dc=com", SearchFilter: "(&(objectClass=inetOrgPerson)(uid={user}))",
		ServiceDN: "uid=svc,ou=people,dc=example,dc=com", ServicePassword: "svc-pw"}
	withServers := func(c Config, servers ...string) Config { c.Servers = servers; return c }
	tests := []struct {
		name     string
		c        Config
		user, pw string
		want     policy.Identity
		wantErr  error // nil, policy.ErrBadPassword, or errAny
	}{
		{"right password", Config{Servers: []string{s.URL}, BindDN: bind}, "alice", "right",
			policy.Identity{Phone: "+31 6 12345678", Email: "alice@example.com"}, nil},
		{"no mobile or mail", Config{Servers: []string{s.URL}, BindDN: bind}, "bob", "bobs-pw", policy.Identity{}, nil},
		{"wrong password", Config{Servers: []string{s.URL}, BindDN: bind}, "alice", "not-her-password", policy.Identity{}, policy.ErrBadPassword},
		{"unknown user", Config{Servers: []string{s.URL}, BindDN: bind}, "mallory", "right", policy.Identity{}, policy.ErrBadPassword},
		{"empty password never reaches a server", Config{Servers: []string{down}, BindDN: bind}, "alice", "", policy.Identity{}, policy.ErrBadPassword},
		{"first server down", Config{Servers: []string{down, s.URL}, BindDN: bind}, "alice", "right",
			policy.Identity{Phone: "+31 6 12345678", Email: "alice@example.com"}, nil},
		{"all down", Config{Servers: []string{down, ldaptest.ClosedURL(t)}, BindDN: bind}, "alice", "right", policy.Identity{}, errAny},
		{"search with a service account", withServers(search, s.URL), "alice", "right",
			policy.Identity{Phone: "+31 6 12345678", Email: "alice@example.com"}, nil},
		{"search: filter injection", withServers(search, s.URL), "alice)(uid=*", "right", policy.Identity{}, policy.ErrBadPassword},
		{"search: wrong password", withServers(search, s.URL), "alice", "not-her-password", policy.Identity{}, policy.ErrBadPassword},
		{"ldaps", Config{Servers: []string{s.LDAPSURL}, BindDN: bind, RootCAs: s.Roots}, "alice", "right",
			policy.Identity{Phone: "+31 6 12345678", Email: "alice@example.com"}, nil},
		{"ldaps, untrusted certificate", Config{Servers: []string{s.LDAPSURL}, BindDN: bind, RootCAs: x509.NewCertPool()}, "alice", "right", policy.Identity{}, errAny},
		{"starttls", Config{Servers: []string{s.URL}, StartTLS: true, BindDN: bind, RootCAs: s.Roots}, "alice", "right",
			policy.Identity{Phone: "+31 6 12345678", Email: "alice@example.com"}, nil},
		{"AD domain form", Config{Servers: []string{s.URL}, BindDN: bind, StripDomain: true}, `EXAMPLE\alice`, "right",
			policy.Identity{Phone: "+31 6 12345678", Email: "alice@example.com"}, nil},
		{"realm form", Config{Servers: []string{s.URL}, BindDN: bind, StripRealm: true}, "alice@example.com", "right",
			policy.Identity{Phone: "+31 6 12345678", Email: "alice@example.com"}, nil},
		{"attributes switched off", Config{Servers: []string{s.URL}, BindDN: bind, PhoneAttribute: "-", EmailAttribute: "-"}, "alice", "right",
			policy.Identity{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Timeout = 2 * time.Second
			d, err := New(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			id, err := d.CheckPassword(context.Background(), tt.user, tt.pw)
			switch {
			case tt.wantErr == errAny:
				if err == nil || errors.Is(err, policy.ErrBadPassword) {
					t.Fatalf("got %v, want an error that is not a wrong password", err)
				}
			case !errors.Is(err, tt.wantErr) && !(err == nil && tt.wantErr == nil):
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if err != nil && tt.pw != "" && strings.Contains(err.Error(), tt.pw) {
				t.Errorf("error %q holds the password", err)
			}
			if id != tt.want {
				t.Errorf("got %+v, want %+v", id, tt.want)
			}
		})
	}
}

var errAny = errors.New("any error but a wrong password")

func TestNewErrorsNameTheField(t *testing.T) {
	tests := []struct {
		c    Config
		want []string
	}{
		{Config{}, []string{"servers: name at least one", "bind_dn: is missing"}},
		{Config{Servers: []string{"http://x"}, BindDN: "uid=x"}, []string{`servers[0]: "http://x" is not an ldap://`, `bind_dn: "uid=x" has no {user}`}},
		{Config{Servers: []string{"ldap://x"}, BindDN: "uid={user}", SearchBase: "dc=x"}, []string{"give bind_dn, or search_base"}},
		{Config{Servers: []string{"ldap://x"}, SearchFilter: "(uid={user})"}, []string{"search_base: is missing"}},
	}
	for _, tt := range tests {
		_, err := New(tt.c)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("New(%+v): got %v, want %q", tt.c, err, w)
			}
		}
	}
}

func TestEscapeDN(t *testing.T) {
	for in, want := range map[string]string{"alice": "alice", "a,b": `a\,b`, "#x": `\#x`, " x ": `\ x\ `, `a+b=c`: `a\+b\=c`} {
		if got := escapeDN(in); got != want {
			t.Errorf("escapeDN(%q) = %q, want %q", in, got, want)
		}
	}
}
