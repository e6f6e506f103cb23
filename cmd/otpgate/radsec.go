package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpgate/otpgate/radius"
)

// radsecConfig are the radius: keys of RADIUS over TLS (RFC 6614).
type radsecConfig struct {
	TLSListen               []string      `mapstructure:"tls_listen"`
	TLSCert                 string        `mapstructure:"tls_cert"`
	TLSKey                  string        `mapstructure:"tls_key"`
	TLSClientCA             string        `mapstructure:"tls_client_ca"`
	TLSIdleTimeout          time.Duration `mapstructure:"tls_idle_timeout"`
	TLSMaxConnections       int           `mapstructure:"tls_max_connections"`
	TLSMaxConnectionsClient int           `mapstructure:"tls_max_connections_per_client"`
}

// radsecSettings are the RadSec listener's, checked; no listen addresses
// means off.
type radsecSettings struct {
	listen       []string
	config       *tls.Config // certificate, client CAs; nil when off
	idle         time.Duration
	maxConns     int
	maxPerClient int
}

// checkRadSec checks the RadSec listener and reads its certificate, key
// and client CAs, so that check-config finds a bad file.
func (c *config) checkRadSec(p *problems) radsecSettings {
	rc := c.Radius.radsecConfig
	r := radsecSettings{
		listen:       rc.TLSListen,
		idle:         rc.TLSIdleTimeout,
		maxConns:     rc.TLSMaxConnections,
		maxPerClient: rc.TLSMaxConnectionsClient,
	}
	if r.idle < 0 || r.idle > time.Hour {
		p.add("radius.tls_idle_timeout", "%s is out of range, want up to 1h (default 5m)", r.idle)
	}
	if r.maxConns < 0 || r.maxConns > 100_000 {
		p.add("radius.tls_max_connections", "%d is out of range, want 1 to 100000 (default 1024)", r.maxConns)
	}
	if r.maxPerClient < 0 || r.maxPerClient > 10_000 {
		p.add("radius.tls_max_connections_per_client", "%d is out of range, want 1 to 10000 (default 32)", r.maxPerClient)
	}
	if len(r.listen) == 0 {
		return r
	}
	for i, a := range r.listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.add(fmt.Sprintf("radius.tls_listen[%d]", i), "%q is not host:port, for example [::]:2083", a)
		}
	}
	missing := false
	for _, f := range []struct{ key, v string }{{"radius.tls_cert", rc.TLSCert}, {"radius.tls_key", rc.TLSKey}, {"radius.tls_client_ca", rc.TLSClientCA}} {
		if f.v == "" {
			p.add(f.key, "is missing: radius.tls_listen needs tls_cert, tls_key and tls_client_ca (the CA that signs the gateways' certificates)")
			missing = true
		}
	}
	if missing {
		return r
	}
	cert, err := tls.LoadX509KeyPair(c.path(rc.TLSCert), c.path(rc.TLSKey))
	if err != nil {
		p.add("radius.tls_cert", "with radius.tls_key: %v", err)
	}
	pem, err := os.ReadFile(c.path(rc.TLSClientCA))
	pool := x509.NewCertPool()
	switch {
	case err != nil:
		p.add("radius.tls_client_ca", "%v", err)
	case !pool.AppendCertsFromPEM(pem):
		p.add("radius.tls_client_ca", "%s holds no PEM certificate", rc.TLSClientCA)
	}
	r.config = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	return r
}

// checkRadSecClients checks that RadSec clients and the listener come
// together.
func (c *config) checkRadSecClients(s *settings, p *problems) {
	tlsClients := 0
	for i, cl := range s.clients {
		if cl.TLSName == "" {
			continue
		}
		tlsClients++
		if len(s.radsec.listen) == 0 {
			p.add(fmt.Sprintf("clients[%d].tls_name", i), "client %s is a RadSec client, but radius.tls_listen is not set", cl.Name)
		}
	}
	if len(s.radsec.listen) > 0 && tlsClients == 0 {
		p.add("radius.tls_listen", "no client has a tls_name, so every RadSec connection would be refused")
	}
}

// radsecListener serves RadSec on its addresses with the certificate and
// client CAs of the configuration in force: a reload puts new ones in
// force for new connections.
type radsecListener struct {
	current atomic.Pointer[tls.Config]
	lns     []net.Listener
}

// listenRadSec opens the RadSec listeners; none when RadSec is off.
func listenRadSec(r radsecSettings) (*radsecListener, error) {
	l := &radsecListener{}
	l.current.Store(r.config)
	for _, addr := range r.listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("radsec listen on %s (radius.tls_listen): %w", addr, err)
		}
		l.lns = append(l.lns, ln)
	}
	return l, nil
}

// reload puts a reloaded configuration's certificate and CAs in force.
func (l *radsecListener) reload(r radsecSettings) {
	if r.config != nil {
		l.current.Store(r.config)
	}
}

func (l *radsecListener) close() {
	for _, ln := range l.lns {
		ln.Close()
	}
}

// serve runs srv on each listener until ctx is done, in wg.
func (l *radsecListener) serve(ctx context.Context, wg *sync.WaitGroup, srv *radius.Server, log *slog.Logger) {
	cfg := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return l.current.Load(), nil }}
	for _, ln := range l.lns {
		wg.Go(func() {
			if err := srv.ServeTLS(ctx, ln, cfg); err != nil {
				log.Error("radsec listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		})
		log.Info("radsec listening", "addr", ln.Addr().String())
	}
}
