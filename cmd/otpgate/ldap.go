package main

import (
	"crypto/x509"
	"os"
	"time"

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
	})
	if err != nil {
		p.add("ldap", "%v", err)
		return nil
	}
	return d
}
