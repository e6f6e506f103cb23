package mail_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/mail"
	"github.com/otpgate/otpgate/mail/mailtest"
	"github.com/otpgate/otpgate/sms"
)

// silent listens on loopback, accepts connections and never says a word.
// Each accepted connection is announced on the channel.
func silent(t *testing.T) (host string, port int, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port, ch
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestSendFailures(t *testing.T) {
	tests := []struct {
		name   string
		opts   mailtest.Options
		change func(*testing.T, *mail.Config)
		want   string // in the error
		is     error  // when set, errors.Is(err, is)
	}{
		{name: "wrong password", opts: mailtest.Options{TLS: "starttls", Username: user, Password: "other"},
			want: "auth as otp: 535 "},
		{name: "wrong user", opts: mailtest.Options{TLS: "starttls", Username: "someone", Password: password},
			want: "auth as otp: 535 "},
		{name: "no STARTTLS offered", opts: mailtest.Options{TLS: "none", Username: user, Password: password},
			want: "does not offer STARTTLS; the code is not sent in clear"},
		{name: "system roots", opts: withAuth,
			change: func(_ *testing.T, c *mail.Config) { c.RootCAs = nil }, want: "starttls with 127.0.0.1:"},
		{name: "empty pool", opts: withAuth,
			change: func(_ *testing.T, c *mail.Config) { c.RootCAs = x509.NewCertPool() }, want: "certificate"},
		{name: "name not on the certificate", opts: withAuth,
			change: func(_ *testing.T, c *mail.Config) { c.ServerName = "mail.example.com" }, want: "certificate is valid for"},
		{name: "implicit tls untrusted", opts: mailtest.Options{TLS: "tls"},
			change: func(_ *testing.T, c *mail.Config) { c.TLS, c.RootCAs = "tls", x509.NewCertPool(); noLogin(c) }, want: "tls with 127.0.0.1:"},
		{name: "implicit tls to a plain server", opts: mailtest.Options{TLS: "none"},
			change: func(_ *testing.T, c *mail.Config) { c.TLS = "tls"; noLogin(c) }, want: "tls with 127.0.0.1:"},
		{name: "no AUTH offered", opts: mailtest.Options{TLS: "starttls"},
			want: "does not offer AUTH"},
		{name: "recipient refused", opts: mailtest.Options{TLS: "starttls", Username: user, Password: password, FailRcpt: true},
			want: "rcpt to: 550 "},
		{name: "nothing listening", opts: withAuth,
			change: func(t *testing.T, c *mail.Config) { c.Port = closedPort(t) }, want: "connect to 127.0.0.1:"},
		{name: "silent server", opts: withAuth,
			change: func(t *testing.T, c *mail.Config) {
				c.Host, c.Port, _ = silent(t)
				c.Timeout = 300 * time.Millisecond
			},
			want: "greeting from 127.0.0.1:", is: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts)
			p := provider(t, srv, func(c *mail.Config) {
				if tt.change != nil {
					tt.change(t, c)
				}
			})
			start := time.Now()
			err := p.Send(context.Background(), msg)
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want one that is %v", err, tt.is)
			}
			if took > 3*time.Second {
				t.Errorf("Send took %s, want it to give up promptly", took)
			}
			for _, secret := range []string{msg.Code, msg.Text, password} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("got error %q, want one without %q", err, secret)
				}
			}
			nothingDelivered(t, srv)
		})
	}
}

func TestSendTimeoutSaysSo(t *testing.T) {
	host, port, _ := silent(t)
	p, err := mail.NewSMTP("mail", mail.Config{Host: host, Port: port, From: "otp@acme.example", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Send(context.Background(), msg)
	if want := "greeting from " + net.JoinHostPort(host, strconv.Itoa(port)) + ": timeout after 300ms"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestSendCancelled(t *testing.T) {
	tests := []struct {
		name string
		// start sends with ctx and cancels it at some point.
		start func(t *testing.T, ctx context.Context, cancel context.CancelFunc) error
	}{
		{"before sending", func(t *testing.T, ctx context.Context, cancel context.CancelFunc) error {
			srv := mailtest.NewServer(t, withAuth)
			cancel()
			err := provider(t, srv, nil).Send(ctx, msg)
			nothingDelivered(t, srv)
			return err
		}},
		{"while the server is silent", func(t *testing.T, ctx context.Context, cancel context.CancelFunc) error {
			host, port, accepted := silent(t)
			p, err := mail.NewSMTP("mail", mail.Config{Host: host, Port: port, From: "otp@acme.example", Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				<-accepted
				cancel()
			}()
			return p.Send(ctx, msg)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			start := time.Now()
			err := tt.start(t, ctx, cancel)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Send took %s after the cancel, want it to give up promptly", took)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
		})
	}
}

func TestSendRefusesBadRecipients(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{TLS: "none"})
	p := provider(t, srv, func(c *mail.Config) { c.TLS = "none"; noLogin(c) })
	tests := []struct{ to, want string }{
		{"alice@example.com\r\nBcc: mallory@example.com", "recipient holds a line break"},
		{"alice@example.com\nBcc: mallory@example.com", "recipient holds a line break"},
		{"Alice <alice@example.com>\r\n", "recipient holds a line break"},
		{"not an address", "recipient is not an e-mail address"},
		{"", "recipient is not an e-mail address"},
		{"+31612345678", "recipient is not an e-mail address"},
	}
	for _, tt := range tests {
		err := p.Send(context.Background(), with(msg, func(m *sms.Message) { m.To = tt.to }))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Send to %q: got %v, want %q", tt.to, err, tt.want)
		}
	}
	nothingDelivered(t, srv)
}
