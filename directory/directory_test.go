package directory

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/directory/ldaptest"
	"github.com/otpgate/otpgate/policy"
)

const (
	bindDN    = "uid={user},ou=people,dc=example,dc=com"
	peopleDN  = "ou=people,dc=example,dc=com"
	serviceDN = "uid=svc,ou=people,dc=example,dc=com"
)

var (
	alice = policy.Identity{Phone: "+31 6 12345678", Email: "alice@example.com"}
	carol = policy.Identity{Phone: "+31 6 87654321", Email: "carol@example.com"}
)

// errAny in a test case wants an error that is not policy.ErrBadPassword:
// the check could not be made.
var errAny = errors.New("any error but a wrong password")

func TestCheckPassword(t *testing.T) {
	s := ldaptest.Start(t)
	down, down2 := ldaptest.ClosedURL(t), ldaptest.ClosedURL(t)
	silent := listen(t)

	direct := func(servers ...string) Config { return Config{Servers: servers, BindDN: bindDN} }
	search := func(filter string) Config {
		return Config{Servers: []string{s.URL}, SearchBase: peopleDN, SearchFilter: filter,
			ServiceDN: serviceDN, ServicePassword: "svc-pw"}
	}
	byUID := search("(&(objectClass=inetOrgPerson)(uid={user}))")
	with := func(c Config, change func(*Config)) Config { change(&c); return c }

	tests := []struct {
		name     string
		c        Config
		user, pw string
		want     policy.Identity
		wantErr  error    // nil, policy.ErrBadPassword or errAny
		errHas   []string // what the error's text holds
	}{
		{name: "right password", c: direct(s.URL), user: "alice", pw: "right", want: alice},
		{name: "no mobile or mail", c: direct(s.URL), user: "bob", pw: "bobs-pw"},
		{name: "wrong password", c: direct(s.URL), user: "alice", pw: "not-her-password", wantErr: policy.ErrBadPassword},
		{name: "wrong password is final", c: direct(s.URL, down), user: "alice", pw: "not-her-password", wantErr: policy.ErrBadPassword},
		{name: "unknown user", c: direct(s.URL), user: "mallory", pw: "right", wantErr: policy.ErrBadPassword},
		{name: "another's password", c: direct(s.URL), user: "bob", pw: "right", wantErr: policy.ErrBadPassword},
		{name: "DN injection", c: direct(s.URL), user: "alice,ou=people", pw: "right", wantErr: policy.ErrBadPassword},
		{name: "first server down", c: direct(down, s.URL), user: "alice", pw: "right", want: alice},
		{name: "first server silent", c: with(direct(silent.url, s.URL), func(c *Config) { c.Timeout = 300 * time.Millisecond }),
			user: "alice", pw: "right", want: alice},
		{name: "every server down", c: direct(down, down2), user: "alice", pw: "right", wantErr: errAny,
			errHas: []string{"no directory server answered", down + ": connect: connection refused; ", down2 + ": connect: connection refused"}},
		{name: "own entry hidden", c: direct(s.URL), user: "carol", pw: "carols-pw"},
		{name: "own entry hidden, read by the service account",
			c:    with(direct(s.URL), func(c *Config) { c.ServiceDN, c.ServicePassword = serviceDN, "svc-pw" }),
			user: "carol", pw: "carols-pw", want: carol},
		{name: "attributes switched off", c: with(direct(s.URL), func(c *Config) { c.PhoneAttribute, c.EmailAttribute = "-", "-" }),
			user: "alice", pw: "right"},
		{name: "other attributes", c: with(direct(s.URL), func(c *Config) { c.PhoneAttribute, c.EmailAttribute = "cn", "-" }),
			user: "alice", pw: "right", want: policy.Identity{Phone: "alice"}},

		{name: "search", c: byUID, user: "alice", pw: "right", want: alice},
		{name: "search: wrong password", c: byUID, user: "alice", pw: "not-her-password", wantErr: policy.ErrBadPassword},
		{name: "search: unknown user", c: byUID, user: "mallory", pw: "right", wantErr: policy.ErrBadPassword},
		{name: "search: filter injection", c: byUID, user: "alice)(uid=*", pw: "right", wantErr: policy.ErrBadPassword},
		{name: "search: wildcard", c: byUID, user: "*", pw: "right", wantErr: policy.ErrBadPassword},
		{name: "search: two entries", c: search("(|(uid={user})(uid=bob))"), user: "alice", pw: "right", wantErr: policy.ErrBadPassword},
		{name: "search: many entries", c: search("(|(uid={user})(objectClass=inetOrgPerson))"), user: "alice", pw: "right",
			wantErr: policy.ErrBadPassword},
		{name: "search: own entry hidden", c: byUID, user: "carol", pw: "carols-pw", want: carol},
		{name: "search: wrong service password", c: with(byUID, func(c *Config) { c.ServicePassword = "not-svc-pw" }),
			user: "alice", pw: "right", wantErr: errAny, errHas: []string{"bind as the service account: invalid credentials"}},
		{name: "search: first server down", c: with(byUID, func(c *Config) { c.Servers = []string{down, s.URL} }),
			user: "alice", pw: "right", want: alice},

		{name: "ldaps", c: with(direct(s.LDAPSURL), func(c *Config) { c.RootCAs = s.Roots }), user: "alice", pw: "right", want: alice},
		{name: "ldaps, untrusted certificate", c: with(direct(s.LDAPSURL), func(c *Config) { c.RootCAs = x509.NewCertPool() }),
			user: "alice", pw: "right", wantErr: errAny, errHas: []string{s.LDAPSURL + ": handshake: ", "certificate"}},
		{name: "starttls", c: with(direct(s.URL), func(c *Config) { c.StartTLS, c.RootCAs = true, s.Roots }),
			user: "alice", pw: "right", want: alice},
		{name: "starttls, untrusted certificate", c: with(direct(s.URL), func(c *Config) { c.StartTLS, c.RootCAs = true, x509.NewCertPool() }),
			user: "alice", pw: "right", wantErr: errAny, errHas: []string{s.URL + ": starttls: ", "certificate"}},
		{name: "starttls leaves ldaps alone", c: with(direct(s.LDAPSURL), func(c *Config) { c.StartTLS, c.RootCAs = true, s.Roots }),
			user: "alice", pw: "right", want: alice},

		{name: "AD domain form", c: with(direct(s.URL), func(c *Config) { c.StripDomain = true }), user: `EXAMPLE\alice`, pw: "right", want: alice},
		{name: "AD domain form kept", c: direct(s.URL), user: `EXAMPLE\alice`, pw: "right", wantErr: policy.ErrBadPassword},
		{name: "realm form", c: with(direct(s.URL), func(c *Config) { c.StripRealm = true }), user: "alice@example.com", pw: "right", want: alice},
		{name: "realm form kept", c: direct(s.URL), user: "alice@example.com", pw: "right", wantErr: policy.ErrBadPassword},
		{name: "search: AD domain form", c: with(byUID, func(c *Config) { c.StripDomain = true }), user: `EXAMPLE\alice`, pw: "right", want: alice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.c.Timeout == 0 {
				tt.c.Timeout = 5 * time.Second
			}
			d, err := New(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			id, err := d.CheckPassword(context.Background(), tt.user, tt.pw, nil)
			switch tt.wantErr {
			case nil:
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
			case errAny:
				if err == nil || errors.Is(err, policy.ErrBadPassword) {
					t.Fatalf("got %v, want an error that is not a wrong password", err)
				}
			default:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
			}
			for _, want := range tt.errHas {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got error %q, want it to hold %q", err, want)
				}
			}
			if err != nil && strings.Contains(err.Error(), tt.pw) {
				t.Errorf("got error %q, want one without the password", err)
			}
			if id.Phone != tt.want.Phone || id.Email != tt.want.Email {
				t.Errorf("got %+v, want %+v", id, tt.want)
			}
		})
	}
}

// TestNoServerAsked checks that names and passwords that cannot be right
// are turned away before any server hears of them.
func TestNoServerAsked(t *testing.T) {
	l := listen(t)
	tests := []struct {
		name     string
		c        Config
		user, pw string
	}{
		{"empty password", Config{}, "alice", ""},
		{"empty name", Config{}, "", "right"},
		{"blank name", Config{}, "   ", "right"},
		{"NUL", Config{}, "alice\x00", "right"},
		{"newline", Config{}, "alice\n", "right"},
		{"tab", Config{}, "al\tice", "right"},
		{"DEL", Config{}, "alice\x7f", "right"},
		{"C1 control", Config{}, "alice\u0085", "right"},
		{"not UTF-8", Config{}, "alice\xff", "right"},
		{"nothing after the domain", Config{StripDomain: true}, `EXAMPLE\`, "right"},
		{"nothing before the realm", Config{StripRealm: true}, "@example.com", "right"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Servers, tt.c.BindDN = []string{l.url}, bindDN
			d, err := New(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.CheckPassword(context.Background(), tt.user, tt.pw, nil); !errors.Is(err, policy.ErrBadPassword) {
				t.Errorf("got %v, want %v", err, policy.ErrBadPassword)
			}
			if l.contacted(t) {
				t.Errorf("got a connection to %s, want none", l.url)
			}
		})
	}
}

// TestCancel checks that a cancelled context stops a check waiting on a
// server, and that the next server is not asked.
func TestCancel(t *testing.T) {
	silent, next := listen(t), listen(t)
	d, err := New(Config{Servers: []string{silent.url, next.url}, BindDN: bindDN, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-silent.conns
		cancel()
	}()
	if _, err := d.CheckPassword(ctx, "alice", "right", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want %v", err, context.Canceled)
	}
	if next.contacted(t) {
		t.Errorf("got a connection to the next server, want none")
	}
	if _, err := d.CheckPassword(ctx, "alice", "right", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: got %v, want %v", err, context.Canceled)
	}
	if silent.contacted(t) {
		t.Errorf("cancelled before: got a connection, want none")
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		in                      string
		stripDomain, stripRealm bool
		want                    string
		wantOK                  bool
	}{
		{"alice", false, false, "alice", true},
		{" alice ", false, false, "alice", true},
		{`CORP\alice`, false, false, `CORP\alice`, true},
		{`CORP\alice`, true, false, "alice", true},
		{`a\b\alice`, true, false, "alice", true},
		{"alice@corp.example.com", false, false, "alice@corp.example.com", true},
		{"alice@corp.example.com", false, true, "alice", true},
		{`CORP\alice@corp.example.com`, true, true, "alice", true},
		{`CORP\`, true, false, "", false},
		{"", false, false, "", false},
		{"ali\rce", false, false, "", false},
	}
	for _, tt := range tests {
		d := &Directory{c: Config{StripDomain: tt.stripDomain, StripRealm: tt.stripRealm}}
		got, ok := d.name(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("name(%q) with domain %v, realm %v: got %q, %v, want %q, %v",
				tt.in, tt.stripDomain, tt.stripRealm, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want []string // each line of the error begins with one, in order; none for no error
	}{
		{"bind", Config{Servers: []string{"ldaps://dc1.example.com"}, BindDN: "{user}@corp.example.com"}, nil},
		{"search", Config{Servers: []string{"ldap://127.0.0.1:389"}, SearchBase: peopleDN,
			SearchFilter: "(&(objectClass=user)(sAMAccountName={user}))", ServiceDN: serviceDN, ServicePassword: "pw"}, nil},
		{"bind with a service account", Config{Servers: []string{"ldap://x"}, BindDN: bindDN, ServiceDN: serviceDN, ServicePassword: "pw"}, nil},
		{"empty", Config{}, []string{
			"servers: name at least one, such as ldaps://dc1.example.com:636",
			"bind_dn: is missing: give bind_dn, or search_base with search_filter",
		}},
		{"bad servers", Config{Servers: []string{"ldap://ok", "http://x", "ldaps://", "dc1:389"}, BindDN: bindDN}, []string{
			`servers[1]: "http://x" is not an ldap:// or ldaps:// URL`,
			`servers[2]: "ldaps://" is not an ldap:// or ldaps:// URL`,
			`servers[3]: "dc1:389" is not an ldap:// or ldaps:// URL`,
		}},
		{"bind_dn without {user}", Config{Servers: []string{"ldap://x"}, BindDN: "uid=x"}, []string{
			`bind_dn: "uid=x" has no {user}`,
		}},
		{"both", Config{Servers: []string{"ldap://x"}, BindDN: bindDN, SearchBase: peopleDN}, []string{
			"bind_dn: give bind_dn, or search_base with search_filter, not both",
		}},
		{"search without base or account", Config{Servers: []string{"ldap://x"}, SearchFilter: "(uid={user})"}, []string{
			"search_base: is missing",
			"service_dn: is missing: searching needs a service account",
		}},
		{"search without filter", Config{Servers: []string{"ldap://x"}, SearchBase: peopleDN, ServiceDN: serviceDN, ServicePassword: "pw"}, []string{
			"search_filter: is missing",
		}},
		{"bad search", Config{Servers: []string{"ldap://x"}, SearchBase: "people", SearchFilter: "(uid={user}",
			ServiceDN: serviceDN, ServicePassword: "pw"}, []string{
			`search_base: "people" is not a DN: `,
			`search_filter: "(uid={user}" is not a filter: `,
		}},
		{"filter without {user}", Config{Servers: []string{"ldap://x"}, SearchBase: peopleDN, SearchFilter: "(uid=alice)",
			ServiceDN: serviceDN, ServicePassword: "pw"}, []string{
			`search_filter: "(uid=alice)" has no {user}`,
		}},
		{"half a service account", Config{Servers: []string{"ldap://x"}, BindDN: bindDN, ServiceDN: serviceDN}, []string{
			`service_password: is missing for service_dn "uid=svc,ou=people,dc=example,dc=com"`,
		}},
		{"the other half", Config{Servers: []string{"ldap://x"}, BindDN: bindDN, ServicePassword: "pw"}, []string{
			"service_dn: is missing, but service_password is set",
		}},
		{"negative timeout", Config{Servers: []string{"ldap://x"}, BindDN: bindDN, Timeout: -time.Second}, []string{
			"timeout: -1s is negative",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.c)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %+v, want an error", d)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want lines beginning %q", got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("got %q, want it to begin %q", got[i], tt.want[i])
				}
			}
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("got %q, want no service password in it", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	d, err := New(Config{Servers: []string{"ldap://dc1", "ldaps://dc2", "ldap://dc3:3389"}, BindDN: bindDN})
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, u := range d.servers {
		hosts = append(hosts, u.Host)
	}
	if got, want := strings.Join(hosts, " "), "dc1:389 dc2:636 dc3:3389"; got != want {
		t.Errorf("got hosts %q, want %q", got, want)
	}
	if d.c.Timeout != 5*time.Second || d.c.PhoneAttribute != "mobile" || d.c.EmailAttribute != "mail" {
		t.Errorf("got timeout %v, attributes %q and %q, want 5s, mobile and mail", d.c.Timeout, d.c.PhoneAttribute, d.c.EmailAttribute)
	}
}

// listener is a loopback server that accepts connections and never
// answers them, held open until the test ends.
type listener struct {
	url   string
	addr  net.Addr
	conns chan net.Conn // each connection accepted, in order
}

func listen(t *testing.T) *listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &listener{url: "ldap://" + l.Addr().String(), addr: l.Addr(), conns: make(chan net.Conn, 64)}
	done := make(chan struct{})
	var held []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			s.conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	return s
}

// contacted reports whether anyone connected since it was last asked. It
// connects itself and reads what was accepted up to that connection, which
// comes after any made before it.
func (s *listener) contacted(t *testing.T) bool {
	t.Helper()
	marker, err := net.Dial("tcp", s.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	others := false
	for c := range s.conns {
		if c.RemoteAddr().String() == marker.LocalAddr().String() {
			return others
		}
		others = true
	}
	return others
}

// TestGroups reads the user's groups from the slapd test directory: by
// memberOf (the overlay), by a group search for servers without it, and
// nested, by either; the names come as GroupName writes them.
func TestGroups(t *testing.T) {
	srv := ldaptest.Start(t)
	const (
		admins   = "cn=vpn admins,ou=groups,dc=example,dc=com"
		staff    = "cn=staff,ou=groups,dc=example,dc=com"
		everyone = "cn=everyone,ou=groups,dc=example,dc=com"
	)
	base := Config{Servers: []string{srv.URL}, BindDN: "uid={user},ou=people,dc=example,dc=com"}
	tests := []struct {
		name  string
		set   func(c *Config)
		user  string
		pw    string
		wants []string
	}{
		{"memberOf", func(c *Config) {}, "alice", "right", []string{admins}},
		{"memberOf, nested", func(c *Config) { c.NestedGroups = true }, "alice", "right", []string{admins, staff, everyone}},
		{"memberOf, nested, bob", func(c *Config) { c.NestedGroups = true }, "bob", "bobs-pw", []string{staff, everyone}},
		{"search", func(c *Config) {
			c.GroupAttribute, c.GroupSearchBase = "-", "ou=groups,dc=example,dc=com"
		}, "alice", "right", []string{admins}},
		{"search, nested", func(c *Config) {
			c.GroupAttribute, c.GroupSearchBase, c.NestedGroups = "-", "ou=groups,dc=example,dc=com", true
		}, "alice", "right", []string{admins, staff, everyone}},
		{"search, own filter", func(c *Config) {
			c.GroupAttribute, c.GroupSearchBase = "-", "ou=groups,dc=example,dc=com"
			c.GroupSearchFilter = "(&(objectClass=groupOfNames)(cn=Staff)(member={dn}))"
		}, "bob", "bobs-pw", []string{staff}},
		{"none", func(c *Config) { c.GroupAttribute = "-" }, "alice", "right", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.set(&c)
			d, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			id, err := d.CheckPassword(context.Background(), tt.user, tt.pw, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(id.Groups, tt.wants) {
				t.Errorf("groups: got %q, want %q", id.Groups, tt.wants)
			}
		})
	}
	// A search base that does not exist is an error, not "in no group".
	c := base
	c.GroupSearchBase = "ou=nowhere,dc=example,dc=com"
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CheckPassword(context.Background(), "alice", "right", nil); err == nil {
		t.Errorf("a failing group search: got no error")
	}
}
