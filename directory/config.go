package directory

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Config is how to reach the directory and find users in it. Give either
// BindDN, or SearchBase and SearchFilter with a service account.
type Config struct {
	// Servers are ldap:// or ldaps:// URLs, tried in order: one that
	// cannot be reached, times out or is busy gives way to the next. A
	// URL without a port means 389 for ldap:// and 636 for ldaps://.
	// New refuses an empty list.
	Servers []string
	// StartTLS upgrades ldap:// connections with StartTLS and refuses a
	// server that cannot; false leaves them in the clear. ldaps://
	// servers speak TLS from the start either way.
	StartTLS bool
	// RootCAs verify the servers' certificates; nil means the system's.
	RootCAs *x509.CertPool
	// Timeout bounds connecting to one server and each operation on it;
	// zero means 5 seconds.
	Timeout time.Duration

	// BindDN, when set, is the DN (or Active Directory user principal
	// name) to bind as, {user} standing for the name, escaped for a DN:
	// "uid={user},ou=people,dc=example,dc=com" or "{user}@corp.example.com".
	// Empty means search for the user instead.
	BindDN string
	// SearchBase and SearchFilter, instead of BindDN, find the user's
	// entry with the service account, which otpgate then binds as;
	// {user} in the filter stands for the name, escaped for a filter:
	// "(&(objectClass=user)(sAMAccountName={user}))". Finding no entry
	// or more than one is a wrong user name.
	SearchBase, SearchFilter string
	// ServiceDN and ServicePassword are the account that searches. With
	// BindDN they are optional, and only read the phone number and
	// e-mail address of users who cannot read their own entry; empty
	// means there is no such account.
	ServiceDN, ServicePassword string

	// PhoneAttribute and EmailAttribute name the attributes read into
	// the Identity; empty means "mobile" and "mail", "-" means none.
	PhoneAttribute, EmailAttribute string

	// GroupAttribute names the attribute of the user's entry that lists
	// the groups the user is in; empty means "memberOf", "-" none.
	GroupAttribute string
	// GroupSearchBase, when set, finds the user's groups by a search
	// under it with GroupSearchFilter, for servers without memberOf, or
	// for Active Directory's nested groups in one search with the filter
	// (member:1.2.840.113556.1.4.1941:={dn}). Empty means no search.
	GroupSearchBase string
	// GroupSearchFilter finds the groups a DN is a member of, {dn}
	// standing for it, escaped for a filter; empty means "(member={dn})".
	GroupSearchFilter string
	// NestedGroups also counts the groups the user's groups are in, and
	// theirs, up to ten levels: with GroupSearchBase by searching again
	// for each group, else by reading each group's GroupAttribute.
	NestedGroups bool

	// StripDomain turns "CORP\alice" into "alice" before {user} is filled
	// in; false leaves the name as given.
	StripDomain bool
	// StripRealm turns "alice@corp.example.com" into "alice" before
	// {user} is filled in; false leaves the name as given.
	StripRealm bool
}

// defaultTimeout is Config.Timeout's zero value.
const defaultTimeout = 5 * time.Second

// New checks c and returns a Directory that uses it. Its error lists every
// problem, each naming the field at fault ("servers[1]: ...").
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
		u, err := serverURL(s)
		if err != nil {
			bad(fmt.Sprintf("servers[%d]", i), "%v", err)
			continue
		}
		d.servers = append(d.servers, u)
	}

	searching := c.SearchBase != "" || c.SearchFilter != ""
	switch {
	case c.BindDN != "" && searching:
		bad("bind_dn", "give bind_dn, or search_base with search_filter, not both")
	case c.BindDN != "":
		if !strings.Contains(c.BindDN, "{user}") {
			bad("bind_dn", "%q has no {user}", c.BindDN)
		}
	case searching:
		if c.SearchBase == "" {
			bad("search_base", "is missing")
		} else if _, err := ldap.ParseDN(c.SearchBase); err != nil {
			bad("search_base", "%q is not a DN: %v", c.SearchBase, err)
		}
		switch {
		case c.SearchFilter == "":
			bad("search_filter", "is missing")
		case !strings.Contains(c.SearchFilter, "{user}"):
			bad("search_filter", "%q has no {user}", c.SearchFilter)
		default:
			if _, err := ldap.CompileFilter(strings.ReplaceAll(c.SearchFilter, "{user}", "x")); err != nil {
				bad("search_filter", "%q is not a filter: %v", c.SearchFilter, err)
			}
		}
		if c.ServiceDN == "" {
			bad("service_dn", "is missing: searching needs a service account")
		}
	default:
		bad("bind_dn", "is missing: give bind_dn, or search_base with search_filter")
	}
	if c.ServiceDN != "" && c.ServicePassword == "" {
		bad("service_password", "is missing for service_dn %q", c.ServiceDN)
	}
	if c.ServiceDN == "" && c.ServicePassword != "" {
		bad("service_dn", "is missing, but service_password is set")
	}

	switch {
	case c.Timeout < 0:
		bad("timeout", "%v is negative", c.Timeout)
	case c.Timeout == 0:
		d.c.Timeout = defaultTimeout
	}
	if d.c.PhoneAttribute == "" {
		d.c.PhoneAttribute = "mobile"
	}
	if d.c.EmailAttribute == "" {
		d.c.EmailAttribute = "mail"
	}
	if d.c.GroupAttribute == "" {
		d.c.GroupAttribute = "memberOf"
	}
	if d.c.GroupSearchFilter == "" {
		d.c.GroupSearchFilter = "(member={dn})"
	}
	if !strings.Contains(d.c.GroupSearchFilter, "{dn}") {
		bad("group_search_filter", "%q has no {dn}", c.GroupSearchFilter)
	} else if _, err := ldap.CompileFilter(strings.ReplaceAll(d.c.GroupSearchFilter, "{dn}", "x")); err != nil {
		bad("group_search_filter", "%q is not a filter: %v", c.GroupSearchFilter, err)
	}
	if c.GroupSearchBase != "" {
		if _, err := ldap.ParseDN(c.GroupSearchBase); err != nil {
			bad("group_search_base", "%q is not a DN: %v", c.GroupSearchBase, err)
		}
	}
	if c.NestedGroups && c.GroupSearchBase == "" && d.c.GroupAttribute == "-" {
		bad("nested_groups", "needs group_search_base or a group_attribute")
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return d, nil
}

// serverURL parses one of Config.Servers and fills in the default port.
func serverURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not an ldap:// or ldaps:// URL", s)
	}
	if u.Port() == "" {
		port := "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, nil
}

// GroupName is the form a group's DN takes in an Identity's Groups, and in
// which configured groups are compared with them: its parts in lower case,
// without the spaces around them ("cn=vpn admins,ou=groups,dc=example,dc=com").
func GroupName(dn string) (string, error) {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 {
		return "", fmt.Errorf("%q is not a group's DN such as CN=VPN Admins,OU=Groups,DC=corp,DC=example,DC=com", dn)
	}
	rdns := make([]string, len(d.RDNs))
	for i, r := range d.RDNs {
		parts := make([]string, len(r.Attributes))
		for j, a := range r.Attributes {
			parts[j] = strings.ToLower(a.Type) + "=" + ldap.EscapeDN(strings.ToLower(a.Value))
		}
		rdns[i] = strings.Join(parts, "+")
	}
	return strings.Join(rdns, ","), nil
}
