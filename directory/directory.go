// Package directory checks first-factor passwords against an LDAP
// directory (Active Directory, OpenLDAP) by binding as the user, and reads
// the user's phone number and e-mail address from it.
package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/otpgate/otpgate/policy"
)

// Config is how to reach the directory and find users in it.
type Config struct {
	// Servers are ldap:// or ldaps:// URLs, tried in order: one that
	// cannot be reached gives way to the next.
	Servers []string
	// StartTLS upgrades ldap:// connections, and refuses servers that
	// cannot.
	StartTLS bool
	// RootCAs verify the servers' certificates; nil means the system's.
	RootCAs *x509.CertPool
	// Timeout bounds connecting to one server and each operation; zero
	// means 5 seconds.
	Timeout time.Duration
	// BindDN, when set, is the DN (or AD user principal name) to bind as,
	// with {user} standing for the name: "uid={user},ou=people,dc=example,dc=com".
	BindDN string
	// SearchBase and SearchFilter, instead of BindDN, find the user's
	// entry with the service account first; {user} in the filter stands
	// for the name: "(sAMAccountName={user})".
	SearchBase, SearchFilter string
	// ServiceDN and ServicePassword are the account that searches.
	ServiceDN, ServicePassword string
	// PhoneAttribute and EmailAttribute are read into the Identity;
	// empty means "mobile" and "mail", "-" means not at all.
	PhoneAttribute, EmailAttribute string
	// StripDomain turns "CORP\alice" into "alice"; StripRealm turns
	// "alice@corp.example.com" into "alice".
	StripDomain, StripRealm bool
}

// Directory checks passwords against one directory.
type Directory struct {
	c       Config
	servers []*url.URL
}

// New checks c. Its errors name the field at fault.
func New(c Config) (*Directory, error) {
	var problems []error
	bad := func(field, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	d := &Directory{c: c}
	if len(c.Servers) == 0 {
		bad("servers", "name at least one, such as ldaps://dc1.example.com:636")
	}
	for i, s := range c.Servers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
			bad(fmt.Sprintf("servers[%d]", i), "%q is not an ldap:// or ldaps:// URL", s)
			continue
		}
		if u.Port() == "" {
			port := "389"
			if u.Scheme == "ldaps" {
				port = "636"
			}
			u.Host = net.JoinHostPort(u.Hostname(), port)
		}
		d.servers = append(d.servers, u)
	}
	switch {
	case c.BindDN != "" && (c.SearchBase != "" || c.SearchFilter != ""):
		bad("bind_dn", "give bind_dn, or search_base with search_filter, not both")
	case c.BindDN != "":
		if !strings.Contains(c.BindDN, "{user}") {
			bad("bind_dn", "%q has no {user}", c.BindDN)
		}
	case c.SearchBase != "" || c.SearchFilter != "":
		if c.SearchBase == "" {
			bad("search_base", "is missing")
		}
		if !strings.Contains(c.SearchFilter, "{user}") {
			bad("search_filter", "%q has no {user}", c.SearchFilter)
		}
	default:
		bad("bind_dn", "is missing: give bind_dn, or search_base with search_filter")
	}
	if d.c.Timeout <= 0 {
		d.c.Timeout = 5 * time.Second
	}
	if d.c.PhoneAttribute == "" {
		d.c.PhoneAttribute = "mobile"
	}
	if d.c.EmailAttribute == "" {
		d.c.EmailAttribute = "mail"
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return d, nil
}

// errUnreachable marks a server that could not be asked, so the next is.
var errUnreachable = errors.New("unreachable")

// CheckPassword binds as user with password. A wrong password, an unknown
// user, and an empty password (which LDAP would take for an anonymous
// bind) are policy.ErrBadPassword; the empty one without asking anyone.
func (d *Directory) CheckPassword(ctx context.Context, user, password string) (policy.Identity, error) {
	user = d.normalize(user)
	if user == "" || password == "" || strings.ContainsFunc(user, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return policy.Identity{}, policy.ErrBadPassword
	}
	var errs []error
	for _, u := range d.servers {
		if err := ctx.Err(); err != nil {
			return policy.Identity{}, err
		}
		id, err := d.check(ctx, u, user, password)
		switch {
		case err == nil:
			return id, nil
		case errors.Is(err, policy.ErrBadPassword):
			return policy.Identity{}, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", u.Redacted(), err))
	}
	return policy.Identity{}, fmt.Errorf("ldap: %w", errors.Join(errs...))
}

func (d *Directory) normalize(user string) string {
	user = strings.TrimSpace(user)
	if d.c.StripDomain {
		if i := strings.LastIndexByte(user, '\\'); i >= 0 {
			user = user[i+1:]
		}
	}
	if d.c.StripRealm {
		if i := strings.LastIndexByte(user, '@'); i >= 0 {
			user = user[:i]
		}
	}
	return user
}

// check asks one server.
func (d *Directory) check(ctx context.Context, u *url.URL, user, password string) (policy.Identity, error) {
	conn, err := d.dial(ctx, u)
	if err != nil {
		return policy.Identity{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	dn := ""
	if d.c.BindDN != "" {
		dn = strings.ReplaceAll(d.c.BindDN, "{user}", escapeDN(user))
	} else {
		if err := conn.Bind(d.c.ServiceDN, d.c.ServicePassword); err != nil {
			return policy.Identity{}, fmt.Errorf("bind as the service account: %w", failure(err))
		}
		res, err := conn.Search(ldap.NewSearchRequest(d.c.SearchBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, int(d.c.Timeout/time.Second), false,
			strings.ReplaceAll(d.c.SearchFilter, "{user}", ldap.EscapeFilter(user)), []string{"dn"}, nil))
		if err != nil {
			return policy.Identity{}, fmt.Errorf("search: %w", failure(err))
		}
		if len(res.Entries) != 1 {
			return policy.Identity{}, policy.ErrBadPassword // none, or not one user
		}
		dn = res.Entries[0].DN
	}
	if err := conn.Bind(dn, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return policy.Identity{}, policy.ErrBadPassword
		}
		return policy.Identity{}, fmt.Errorf("bind: %w", failure(err))
	}
	return d.identity(conn, dn), nil
}

// identity reads the phone and e-mail attributes of the user's entry; it
// is best effort: a directory that hides them gives an empty Identity.
func (d *Directory) identity(conn *ldap.Conn, dn string) policy.Identity {
	var attrs []string
	for _, a := range []string{d.c.PhoneAttribute, d.c.EmailAttribute} {
		if a != "-" {
			attrs = append(attrs, a)
		}
	}
	if len(attrs) == 0 {
		return policy.Identity{}
	}
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
		int(d.c.Timeout/time.Second), false, "(objectClass=*)", attrs, nil))
	if err != nil || len(res.Entries) != 1 {
		return policy.Identity{}
	}
	e := res.Entries[0]
	var id policy.Identity
	if d.c.PhoneAttribute != "-" {
		id.Phone = e.GetAttributeValue(d.c.PhoneAttribute)
	}
	if d.c.EmailAttribute != "-" {
		id.Email = e.GetAttributeValue(d.c.EmailAttribute)
	}
	return id
}

// dial connects to one server, with TLS as its scheme and StartTLS say.
func (d *Directory) dial(ctx context.Context, u *url.URL) (*ldap.Conn, error) {
	dialer := &net.Dialer{Timeout: d.c.Timeout}
	tlsConfig := &tls.Config{ServerName: u.Hostname(), RootCAs: d.c.RootCAs, MinVersion: tls.VersionTLS12}
	raw, err := dialer.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnreachable, opErr(err))
	}
	if u.Scheme == "ldaps" {
		tc := tls.Client(raw, tlsConfig)
		hctx, cancel := context.WithTimeout(ctx, d.c.Timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("tls: %v", opErr(err))
		}
		raw = tc
	}
	conn := ldap.NewConn(raw, u.Scheme == "ldaps")
	conn.Start()
	conn.SetTimeout(d.c.Timeout)
	if d.c.StartTLS && u.Scheme == "ldap" {
		if err := conn.StartTLS(tlsConfig); err != nil {
			conn.Close()
			return nil, fmt.Errorf("starttls: %v", failure(err))
		}
	}
	return conn, nil
}

// failure shortens an LDAP error to what an admin needs.
func failure(err error) error {
	var le *ldap.Error
	if errors.As(err, &le) {
		if le.Err != nil {
			return fmt.Errorf("%s: %v", ldap.LDAPResultCodeMap[le.ResultCode], opErr(le.Err))
		}
		return errors.New(ldap.LDAPResultCodeMap[le.ResultCode])
	}
	return opErr(err)
}

func opErr(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

// escapeDN escapes a value for a DN (RFC 4514).
func escapeDN(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case strings.ContainsRune(`,+"\<>;=`, r),
			r == '#' && i == 0, r == ' ' && (i == 0 || i == len(s)-1):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == 0:
			b.WriteString(`\00`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
