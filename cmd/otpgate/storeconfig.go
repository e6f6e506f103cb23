package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/otpgate/otpgate/store"
)

// etcdConfig is store.etcd: where the shared store of a cluster is.
type etcdConfig struct {
	Endpoints    []string      `mapstructure:"endpoints"`
	Prefix       string        `mapstructure:"prefix"`
	DialTimeout  time.Duration `mapstructure:"dial_timeout"`
	CAFile       string        `mapstructure:"ca_file"`
	CertFile     string        `mapstructure:"cert_file"`
	KeyFile      string        `mapstructure:"key_file"`
	Username     string        `mapstructure:"username"`
	PasswordFile string        `mapstructure:"password_file"`
}

// clusterConfig is cluster: this node among others.
type clusterConfig struct {
	NodeName string `mapstructure:"node_name"`
}

// checkStore checks store.backend and store.etcd, and names the node.
func (c *config) checkStore(s *settings, p *problems) {
	switch c.Store.Backend {
	case "", "bbolt":
		if len(c.Store.Etcd.Endpoints) > 0 {
			p.add("store.etcd.endpoints", "is set, but store.backend is bbolt; set store.backend: etcd to use etcd")
		}
		return
	case "etcd":
	default:
		p.add("store.backend", "%q is not one of bbolt, etcd", c.Store.Backend)
		return
	}
	ec := c.Store.Etcd
	e := &store.Etcd{Prefix: ec.Prefix, DialTimeout: ec.DialTimeout, Username: ec.Username}
	if len(ec.Endpoints) == 0 {
		p.add("store.etcd.endpoints", "is empty; list the etcd members' client URLs, for example https://10.0.0.1:2379")
	}
	secure := ec.CAFile != "" || ec.CertFile != ""
	for i, ep := range ec.Endpoints {
		u, err := url.Parse(ep)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			p.add(fmt.Sprintf("store.etcd.endpoints[%d]", i), "%q is not a client URL such as https://10.0.0.1:2379", ep)
			continue
		case u.Scheme == "https":
			secure = true
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			p.add(fmt.Sprintf("store.etcd.endpoints[%d]", i), "%q has no port, for example https://10.0.0.1:2379", ep)
		}
		e.Endpoints = append(e.Endpoints, ep)
	}
	if e.Prefix == "" {
		e.Prefix = "/otpgate/"
	}
	if !strings.HasPrefix(e.Prefix, "/") || !strings.HasSuffix(e.Prefix, "/") {
		p.add("store.etcd.prefix", "%q must start and end with /, for example /otpgate/", e.Prefix)
	}
	if ec.DialTimeout < 0 || ec.DialTimeout > time.Minute {
		p.add("store.etcd.dial_timeout", "%s is out of range, want up to 1m (default 5s)", ec.DialTimeout)
	}
	if secure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if ec.CAFile != "" {
			pem, err := os.ReadFile(c.path(ec.CAFile))
			tc.RootCAs = x509.NewCertPool()
			switch {
			case err != nil:
				p.add("store.etcd.ca_file", "%v", err)
			case !tc.RootCAs.AppendCertsFromPEM(pem):
				p.add("store.etcd.ca_file", "%s holds no PEM certificate", c.path(ec.CAFile))
			}
		}
		switch {
		case (ec.CertFile == "") != (ec.KeyFile == ""):
			p.add("store.etcd.cert_file", "cert_file and key_file go together: set both for a client certificate, or neither")
		case ec.CertFile != "":
			cert, err := tls.LoadX509KeyPair(c.path(ec.CertFile), c.path(ec.KeyFile))
			if err != nil {
				p.add("store.etcd.cert_file", "%v", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		e.TLS = tc
	} else if ec.KeyFile != "" {
		p.add("store.etcd.key_file", "is set without cert_file")
	}
	switch {
	case ec.Username == "" && ec.PasswordFile != "":
		p.add("store.etcd.password_file", "is set without store.etcd.username")
	case ec.Username != "" && ec.PasswordFile == "":
		p.add("store.etcd.password_file", "is empty; etcd's user %q needs a password, kept in a file of its own", ec.Username)
	case ec.PasswordFile != "":
		b, err := os.ReadFile(c.path(ec.PasswordFile))
		if err != nil {
			p.add("store.etcd.password_file", "%v", err)
		}
		e.Password = strings.TrimRight(string(b), "\r\n")
		if err == nil && e.Password == "" {
			p.add("store.etcd.password_file", "%s is empty", c.path(ec.PasswordFile))
		}
	}
	e.AuditKeep = 24 * time.Hour
	if k := c.Audit.ClusterKeep; k != nil {
		switch {
		case *k < 0 || *k > 7*24*time.Hour:
			p.add("audit.cluster_keep", "%s is out of range, want 0 (none) up to 168h (default 24h)", *k)
		case *k == 0:
			e.AuditKeep = -1
		default:
			e.AuditKeep = *k
		}
	}
	s.etcd = e
	s.nodeName = c.Cluster.NodeName
	if s.nodeName == "" {
		host, _ := os.Hostname()
		port := "1812"
		if len(s.listen) > 0 {
			if _, p, err := net.SplitHostPort(s.listen[0]); err == nil {
				port = p
			}
		}
		s.nodeName = host + ":" + port
	}
}
