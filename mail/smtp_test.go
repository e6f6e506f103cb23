package mail_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/mail"
	"github.com/otpgate/otpgate/mail/mailtest"
	"github.com/otpgate/otpgate/sms"
)

var msg = sms.Message{Channel: "email", To: "alice@example.com", Text: "Uw inlogcode is 482913", Code: "482913", Lang: "nl"}

func provider(t *testing.T, srv *mailtest.Server, change func(*mail.Config)) *mail.SMTP {
	t.Helper()
	c := mail.Config{
		Host: srv.Host(), Port: srv.Port(), TLS: "starttls", RootCAs: srv.CertPool(),
		Username: "otp", Password: "s3cret-pass", From: "Acmé IT <otp@acme.example>",
		HeloName: "otpgate.test", Timeout: 5 * time.Second,
	}
	if change != nil {
		change(&c)
	}
	p, err := mail.NewSMTP("mail", c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// parsed is a received message taken apart.
type parsed struct {
	header  netmail.Header
	subject string
	body    string
}

func parse(t *testing.T, r mailtest.Received) parsed {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatalf("the message does not parse: %v\n%s", err, r.Data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return parsed{m.Header, subject, string(body)}
}

func TestSendStartTLSWithAuth(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{TLS: "starttls", Username: "otp", Password: "s3cret-pass"})
	p := provider(t, srv, nil)
	var ids []string
	for range 2 {
		if err := p.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		r := srv.Next(t)
		if !r.TLS || r.Auth != "otp" || r.From != "otp@acme.example" || len(r.To) != 1 || r.To[0] != "alice@example.com" {
			t.Fatalf("got %+v, want a TLS message from otp, authenticated, to alice", r)
		}
		m := parse(t, r)
		if m.subject != "Uw inlogcode" {
			t.Errorf("got subject %q, want the Dutch one", m.subject)
		}
		if !strings.Contains(m.body, "Uw inlogcode is 482913") || !strings.Contains(m.body, "beheerder") {
			t.Errorf("got body %q, want the code and the Dutch advice", m.body)
		}
		if _, err := m.header.Date(); err != nil {
			t.Errorf("Date: %v", err)
		}
		from, err := m.header.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Name != "Acmé IT" {
			t.Errorf("got From %v (%v), want Acmé IT", from, err)
		}
		for k, want := range map[string]string{"MIME-Version": "1.0", "Content-Type": "text/plain; charset=UTF-8",
			"Content-Transfer-Encoding": "quoted-printable", "To": "<alice@example.com>"} {
			if got := m.header.Get(k); got != want {
				t.Errorf("%s: got %q, want %q", k, got, want)
			}
		}
		id := m.header.Get("Message-ID")
		if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@acme.example>") {
			t.Errorf("got Message-ID %q, want <random@acme.example>", id)
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Errorf("two messages share Message-ID %s", ids[0])
	}
}

func TestSendImplicitTLSAndPlain(t *testing.T) {
	tests := []struct {
		name string
		opts mailtest.Options
		tls  string
		lang string
		want string // subject
	}{
		{"implicit tls", mailtest.Options{TLS: "tls", Username: "otp", Password: "s3cret-pass"}, "tls", "en", "Your login code"},
		{"plain to localhost", mailtest.Options{TLS: "none"}, "none", "fr", "Your login code"}, // unknown language: English
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts)
			p := provider(t, srv, func(c *mail.Config) {
				c.TLS = tt.tls
				if tt.opts.Username == "" {
					c.Username, c.Password = "", ""
				}
			})
			m := msg
			m.Lang = tt.lang
			if err := p.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			r := srv.Next(t)
			if r.TLS != (tt.tls == "tls") {
				t.Errorf("got TLS %v, want %v", r.TLS, tt.tls == "tls")
			}
			if got := parse(t, r).subject; got != tt.want {
				t.Errorf("got subject %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSendUTF8Body(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{TLS: "none"})
	p := provider(t, srv, func(c *mail.Config) {
		c.TLS, c.Username, c.Password = "none", "", ""
		c.Subject = map[string]string{"nl": "Inlogcode voor Zoë – {{.Code | len}} cijfers"}
		c.Body = map[string]string{"nl": "Beste Zoë,\n\n{{.Text}}\n.\nGroet, één team\n"}
	})
	if err := p.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	m := parse(t, srv.Next(t))
	if m.subject != "Inlogcode voor Zoë – 6 cijfers" {
		t.Errorf("got subject %q", m.subject)
	}
	if want := "Beste Zoë,\r\n\r\nUw inlogcode is 482913\r\n.\r\nGroet, één team\r\n"; m.body != want {
		t.Errorf("got body %q, want %q", m.body, want)
	}
}

func TestSendFailures(t *testing.T) {
	silent := func(t *testing.T) string { // accepts and never speaks
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		return ln.Addr().String()
	}
	tests := []struct {
		name   string
		opts   mailtest.Options
		change func(*mail.Config)
		want   string
	}{
		{"wrong password", mailtest.Options{TLS: "starttls", Username: "otp", Password: "other"}, nil, "auth as otp"},
		{"no STARTTLS offered", mailtest.Options{TLS: "none"}, nil, "does not offer STARTTLS"},
		{"untrusted certificate", mailtest.Options{TLS: "starttls", Username: "otp", Password: "s3cret-pass"},
			func(c *mail.Config) { c.RootCAs = x509.NewCertPool() }, "certificate"},
		{"recipient refused", mailtest.Options{TLS: "starttls", Username: "otp", Password: "s3cret-pass", FailRcpt: true}, nil, "rcpt to"},
		{"silent server", mailtest.Options{}, func(c *mail.Config) {
			host, port, _ := net.SplitHostPort(silent(t))
			c.Host = host
			c.Port = atoi(port)
			c.Timeout = 300 * time.Millisecond
		}, "timeout after 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts)
			p := provider(t, srv, tt.change)
			start := time.Now()
			err := p.Send(context.Background(), msg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about %q", err, tt.want)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("Send took %s, want it to give up promptly", time.Since(start))
			}
			for _, secret := range []string{msg.Code, msg.Text, "s3cret-pass"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds %q", err, secret)
				}
			}
		})
	}
}

func TestSendCancelled(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{TLS: "starttls", Username: "otp", Password: "s3cret-pass"})
	p := provider(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Send(ctx, msg); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("got %v, want a cancelled send", err)
	}
	select {
	case r := <-srv.Messages():
		t.Errorf("a cancelled send delivered %s", r.Data)
	default:
	}
}

func TestSendRefusesHeaderInjection(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{TLS: "none"})
	p := provider(t, srv, func(c *mail.Config) { c.TLS, c.Username, c.Password = "none", "", "" })
	for _, to := range []string{"alice@example.com\r\nBcc: mallory@example.com", "not an address"} {
		m := msg
		m.To = to
		if err := p.Send(context.Background(), m); err == nil {
			t.Errorf("Send to %q: got no error", to)
		}
	}
}

func TestNewSMTPErrorsNameTheField(t *testing.T) {
	tests := []struct {
		c    mail.Config
		want []string
	}{
		{mail.Config{Host: "smtp.example.com", TLS: "none", From: "otp@example.com"}, []string{"tls: none sends the code in clear"}},
		{mail.Config{Host: "smtp.example.com", TLS: "ssl", From: "otp@example.com"}, []string{`tls: "ssl" is not one of`}},
		{mail.Config{From: "not an address"}, []string{"host: is missing", `from: "not an address" is not an address`}},
		{mail.Config{Host: "h", From: "o@example.com", Subject: map[string]string{"nl": "{{.Nope}}"}, Body: map[string]string{"en": "{{"}},
			[]string{"subject.nl:", "body.en:"}},
	}
	for _, tt := range tests {
		_, err := mail.NewSMTP("m", tt.c)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("NewSMTP(%+v): got %v, want %q", tt.c, err, w)
			}
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}
