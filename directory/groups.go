package directory

import (
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Bounds on the walk through nested groups.
const (
	maxGroupDepth = 10
	maxGroups     = 1000
)

// groups returns the groups the entry dn is in, as GroupName writes them:
// direct (its GroupAttribute's values), those a group search finds, and,
// with NestedGroups, the groups those are in, each once. A search that
// fails is an error: a user's groups may decide whether they get in.
func (d *Directory) groups(conn *ldap.Conn, dn string, direct []string) ([]string, error) {
	queue := direct
	if d.c.GroupSearchBase != "" {
		found, err := d.searchGroups(conn, dn)
		if err != nil {
			return nil, err
		}
		queue = append(queue, found...)
	}
	seen := map[string]bool{}
	var out []string
	for depth := 0; len(queue) > 0 && depth <= maxGroupDepth; depth++ {
		var next []string
		for _, g := range queue {
			name, err := GroupName(g)
			if err != nil || seen[name] {
				continue
			}
			seen[name] = true
			if out = append(out, name); len(out) > maxGroups {
				return nil, fmt.Errorf("groups: more than %d", maxGroups)
			}
			if !d.c.NestedGroups || depth == maxGroupDepth {
				continue
			}
			parents, err := d.parents(conn, g)
			if err != nil {
				return nil, err
			}
			next = append(next, parents...)
		}
		queue = next
	}
	return out, nil
}

// parents returns the groups the group dn is in.
func (d *Directory) parents(conn *ldap.Conn, dn string) ([]string, error) {
	if d.c.GroupSearchBase != "" {
		return d.searchGroups(conn, dn)
	}
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, "(objectClass=*)", []string{d.c.GroupAttribute}, nil))
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, nil // a group outside what this bind may see
	case err != nil:
		return nil, fmt.Errorf("read group %s: %w", dn, describe(err))
	case len(res.Entries) != 1:
		return nil, nil
	}
	return res.Entries[0].GetEqualFoldAttributeValues(d.c.GroupAttribute), nil
}

// searchGroups finds the groups whose members include dn.
func (d *Directory) searchGroups(conn *ldap.Conn, dn string) ([]string, error) {
	filter := strings.ReplaceAll(d.c.GroupSearchFilter, "{dn}", ldap.EscapeFilter(dn))
	res, err := conn.Search(ldap.NewSearchRequest(d.c.GroupSearchBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		maxGroups, d.timeLimit(), false, filter, []string{noAttributes}, nil))
	if err != nil {
		return nil, fmt.Errorf("search groups: %w", describe(err))
	}
	out := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		out = append(out, e.DN)
	}
	return out, nil
}
