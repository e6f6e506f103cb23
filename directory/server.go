package directory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/otpgate/otpgate/policy"
)

// ask checks user's password on the server at u: policy.ErrBadPassword
// when the server says it is wrong, another error when it cannot say.
func (d *Directory) ask(ctx context.Context, u *url.URL, user, password string) (policy.Identity, error) {
	conn, err := d.dial(ctx, u)
	if err != nil {
		return policy.Identity{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var found *ldap.Entry // the user's entry as the service account sees it
	var dn string
	if d.c.BindDN != "" {
		dn = strings.ReplaceAll(d.c.BindDN, "{user}", ldap.EscapeDN(user))
	} else {
		if found, err = d.search(conn, user); err != nil {
			return policy.Identity{}, err
		}
		dn = found.DN
	}
	// Neither dn nor password is empty here, so this is never the
	// anonymous bind that LDAP makes of an empty password.
	if err := conn.Bind(dn, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return policy.Identity{}, policy.ErrBadPassword
		}
		return policy.Identity{}, fmt.Errorf("bind: %w", describe(err))
	}

	id, ok := d.read(conn, dn)
	switch {
	case ok:
	case found != nil:
		id = d.identity(found)
	case d.c.ServiceDN != "":
		if conn.Bind(d.c.ServiceDN, d.c.ServicePassword) == nil {
			id, _ = d.read(conn, dn)
		}
	}
	if err := ctx.Err(); err != nil {
		return policy.Identity{}, err
	}
	if id.Groups, err = d.groups(conn, dn, id.Groups); err != nil {
		return policy.Identity{}, err
	}
	return id, nil
}

// search finds the one entry the search filter matches for user, with the
// service account.
func (d *Directory) search(conn *ldap.Conn, user string) (*ldap.Entry, error) {
	if err := conn.Bind(d.c.ServiceDN, d.c.ServicePassword); err != nil {
		return nil, fmt.Errorf("bind as the service account: %w", describe(err))
	}
	filter := strings.ReplaceAll(d.c.SearchFilter, "{user}", ldap.EscapeFilter(user))
	res, err := conn.Search(ldap.NewSearchRequest(d.c.SearchBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, d.timeLimit(), false, filter, d.attributes(), nil))
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return nil, policy.ErrBadPassword // more than two entries: not one user
	case err != nil:
		return nil, fmt.Errorf("search: %w", describe(err))
	case len(res.Entries) != 1 || res.Entries[0].DN == "":
		return nil, policy.ErrBadPassword // no entry, or not one user
	}
	return res.Entries[0], nil
}

// read reads the phone and e-mail attributes of the entry at dn with
// conn's bind, and reports whether it could: false when the entry cannot
// be read or shows none of them (which may be access control hiding them).
func (d *Directory) read(conn *ldap.Conn, dn string) (policy.Identity, bool) {
	attrs := d.attributes()
	if len(attrs) == 1 && attrs[0] == noAttributes {
		return policy.Identity{}, true
	}
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, "(objectClass=*)", attrs, nil))
	if err != nil || len(res.Entries) != 1 {
		return policy.Identity{}, false
	}
	e := res.Entries[0]
	for _, a := range attrs {
		if len(e.GetEqualFoldAttributeValues(a)) > 0 {
			return d.identity(e), true
		}
	}
	return policy.Identity{}, false
}

// identity takes the phone number, e-mail address and groups from e.
func (d *Directory) identity(e *ldap.Entry) policy.Identity {
	var id policy.Identity
	if d.c.GroupAttribute != "-" {
		id.Groups = e.GetEqualFoldAttributeValues(d.c.GroupAttribute)
	}
	if d.c.PhoneAttribute != "-" {
		id.Phone = e.GetEqualFoldAttributeValue(d.c.PhoneAttribute)
	}
	if d.c.EmailAttribute != "-" {
		id.Email = e.GetEqualFoldAttributeValue(d.c.EmailAttribute)
	}
	return id
}

// noAttributes asks a search for no attributes at all (RFC 4511 4.5.1.8).
const noAttributes = "1.1"

// attributes are the attributes to read into an Identity.
func (d *Directory) attributes() []string {
	var attrs []string
	for _, a := range []string{d.c.PhoneAttribute, d.c.EmailAttribute, d.c.GroupAttribute} {
		if a != "-" {
			attrs = append(attrs, a)
		}
	}
	if len(attrs) == 0 {
		return []string{noAttributes}
	}
	return attrs
}

// timeLimit is the time limit the server is asked to keep to in a search,
// in whole seconds; 0 would mean none.
func (d *Directory) timeLimit() int { return max(1, int(d.c.Timeout/time.Second)) }

// dial connects to the server at u within the timeout, with TLS from the
// start for ldaps:// and StartTLS when configured for ldap://.
func (d *Directory) dial(ctx context.Context, u *url.URL) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.c.Timeout)
	defer cancel()
	fail := func(op string, err error) error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s: timed out after %v", op, d.c.Timeout)
		}
		return fmt.Errorf("%s: %w", op, describe(err))
	}

	var dialer net.Dialer
	tcp, err := dialer.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fail("connect", err)
	}
	// Closing the connection is what ends a TLS handshake that hangs.
	stop := context.AfterFunc(ctx, func() { tcp.Close() })
	defer stop()
	raw := tcp

	tlsConfig := &tls.Config{ServerName: u.Hostname(), RootCAs: d.c.RootCAs, MinVersion: tls.VersionTLS12}
	if u.Scheme == "ldaps" {
		tc := tls.Client(raw, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			tcp.Close()
			return nil, fail("handshake", err)
		}
		raw = tc
	}
	conn := ldap.NewConn(raw, u.Scheme == "ldaps")
	conn.Start()
	conn.SetTimeout(d.c.Timeout)
	if d.c.StartTLS && u.Scheme == "ldap" {
		if err := conn.StartTLS(tlsConfig); err != nil {
			conn.Close()
			return nil, fail("starttls", err)
		}
	}
	if !stop() {
		conn.Close()
		return nil, fail("connect", ctx.Err())
	}
	return conn, nil
}

// describe shortens an error from the LDAP library or the network to what
// an administrator needs to read.
func describe(err error) error {
	var le *ldap.Error
	if errors.As(err, &le) {
		name := ldap.LDAPResultCodeMap[le.ResultCode]
		switch {
		case le.Err == nil || le.Err.Error() == "":
			return errors.New(strings.ToLower(name))
		case le.ResultCode >= ldap.ErrorNetwork: // the library's own codes
			return describe(le.Err)
		default:
			return fmt.Errorf("%s: %w", strings.ToLower(name), le.Err)
		}
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		return sys.Err
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}
