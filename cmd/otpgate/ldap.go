package main

import (
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/directory"
	"github.com/otpgate/otpgate/policy"
)

// ldapConfig is the directory that first factor "ldap" binds to.
type ldapConfig struct {
	Servers         []string      `mapstructure:"servers"`
	StartTLS        bool          `mapstructure:"start_tls"`
	CAFile          string        `mapstructure:"ca_file"`
	Timeout         time.Duration `mapstructure:"timeout"`
	BindDN          string        `mapstructure:"bind_dn"`
	SearchBase      string        `mapstructure:"search_base"`
	SearchFilter    string        `mapstructure:"search_filter"`
	ServiceDN       string        `mapstructure:"service_dn"`
	ServicePassword string        `mapstructure:"service_password"`
	ServicePassFile string        `mapstructure:"service_password_file"`
	PhoneAttribute  string        `mapstructure:"phone_attribute"`
	EmailAttribute  string        `mapstructure:"email_attribute"`
	StripDomain     *bool         `mapstructure:"strip_domain"`
	StripRealm      bool          `mapstructure:"strip_realm"`
	Groups          ldapGroups    `mapstructure:",squash"`
}

// ldapGroups are how the user's groups are read.
type ldapGroups struct {
	GroupAttribute    string `mapstructure:"group_attribute"`
	GroupSearchBase   string `mapstructure:"group_search_base"`
	GroupSearchFilter string `mapstructure:"group_search_filter"`
	NestedGroups      bool   `mapstructure:"nested_groups"`
}

// checkLDAP builds the directory when one is configured.
func (c *config) checkLDAP(p *problems) policy.PasswordChecker {
	lc := c.LDAP
	if len(lc.Servers) == 0 {
		return nil
	}
	var roots *x509.CertPool
	if lc.CAFile != "" {
		pem, err := os.ReadFile(c.path(lc.CAFile))
		if err != nil {
			p.add("ldap.ca_file", "%v", err)
		} else {
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				p.add("ldap.ca_file", "%s holds no PEM certificate", lc.CAFile)
			}
		}
	}
	pw, err := c.secretValue(lc.ServicePassword, lc.ServicePassFile)
	if err != nil {
		p.add("ldap.service_password", "%v", err)
	}
	d, err := directory.New(directory.Config{
		Servers: lc.Servers, StartTLS: lc.StartTLS, RootCAs: roots, Timeout: lc.Timeout,
		BindDN: lc.BindDN, SearchBase: lc.SearchBase, SearchFilter: lc.SearchFilter,
		ServiceDN: lc.ServiceDN, ServicePassword: pw,
		PhoneAttribute: lc.PhoneAttribute, EmailAttribute: lc.EmailAttribute,
		StripDomain: lc.StripDomain == nil || *lc.StripDomain, StripRealm: lc.StripRealm,
		GroupAttribute: lc.Groups.GroupAttribute, GroupSearchBase: lc.Groups.GroupSearchBase,
		GroupSearchFilter: lc.Groups.GroupSearchFilter, NestedGroups: lc.Groups.NestedGroups,
	})
	if err != nil {
		p.add("ldap", "%v", err)
		return nil
	}
	return d
}

// checkGroups checks a tenant's group_replies and required_groups: each
// group a directory name (DN), written as the directory package compares
// them.
func checkGroups(key string, tc tenantConfig, p *problems) (map[string][]dictionary.Reply, []string) {
	var replies map[string][]dictionary.Reply
	for _, g := range slices.Sorted(maps.Keys(tc.Replies.GroupReplies)) {
		name, err := directory.GroupName(g)
		if err != nil {
			p.add(key+".group_replies", "%v", err)
			continue
		}
		if replies == nil {
			replies = map[string][]dictionary.Reply{}
		}
		replies[name] = append(replies[name], replyAttributes(fmt.Sprintf("%s.group_replies[%q]", key, g), tc.Replies.GroupReplies[g], p)...)
	}
	var required []string
	for i, g := range tc.Replies.RequiredGroups {
		name, err := directory.GroupName(g)
		if err != nil {
			p.add(fmt.Sprintf("%s.required_groups[%d]", key, i), "%v", err)
			continue
		}
		required = append(required, name)
	}
	return replies, required
}
