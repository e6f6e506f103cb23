package mail_test

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/mail"
	"github.com/otpgate/otpgate/mail/mailtest"
	"github.com/otpgate/otpgate/sms"
)

const (
	user     = "otp"
	password = "s3cret-pass"
)

var msg = sms.Message{Channel: "email", To: "alice@example.com", Text: "Uw inlogcode is 482913", Code: "482913", Lang: "nl"}

// withAuth is a STARTTLS server that wants user and password.
var withAuth = mailtest.Options{TLS: "starttls", Username: user, Password: password}

// provider makes a provider for srv: STARTTLS trusting its certificate,
// logging in as user, changed by change.
func provider(t *testing.T, srv *mailtest.Server, change func(*mail.Config)) *mail.SMTP {
	t.Helper()
	c := mail.Config{
		Host: srv.Host(), Port: srv.Port(), TLS: "starttls", RootCAs: srv.CertPool(),
		Username: user, Password: password, From: "Acmé IT <otp@acme.example>",
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

// noLogin makes a provider that does not log in.
func noLogin(c *mail.Config) { c.Username, c.Password = "", "" }

// parsed is a received message taken apart.
type parsed struct {
	header  netmail.Header
	subject string // decoded
	body    string // decoded
}

func parse(t *testing.T, r mailtest.Received) parsed {
	t.Helper()
	for i, line := range bytes.Split(r.Data, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") || len(line) > 998 {
			t.Fatalf("line %d of the message is not a proper line: %q", i+1, line)
		}
	}
	m, err := netmail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatalf("the message does not parse: %v\n%s", err, r.Data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("Subject: %v", err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return parsed{m.Header, subject, string(body)}
}

// nothingDelivered fails the test when srv holds a message.
func nothingDelivered(t *testing.T, srv *mailtest.Server) {
	t.Helper()
	select {
	case r := <-srv.Messages():
		t.Errorf("got a message delivered, want none:\n%s", r.Data)
	default:
	}
}

func TestSendStartTLSWithAuth(t *testing.T) {
	srv := mailtest.NewServer(t, withAuth)
	p := provider(t, srv, nil)
	ids := map[string]bool{}
	for range 2 {
		if err := p.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		r := srv.Next(t)
		if !r.TLS {
			t.Errorf("got TLS false, want the message over TLS")
		}
		if r.Auth != user {
			t.Errorf("got Auth %q, want %q", r.Auth, user)
		}
		if r.From != "otp@acme.example" || len(r.To) != 1 || r.To[0] != "alice@example.com" {
			t.Errorf("got envelope %s -> %v, want otp@acme.example -> [alice@example.com]", r.From, r.To)
		}
		m := parse(t, r)
		if want := "Uw inlogcode"; m.subject != want {
			t.Errorf("got subject %q, want %q", m.subject, want)
		}
		if !strings.Contains(m.body, "482913") {
			t.Errorf("got body %q, want the code in it", m.body)
		}
		if _, err := m.header.Date(); err != nil {
			t.Errorf("got Date %q (%v), want an RFC 5322 date", m.header.Get("Date"), err)
		}
		from, err := m.header.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Name != "Acmé IT" || from[0].Address != "otp@acme.example" {
			t.Errorf("got From %v (%v), want Acmé IT <otp@acme.example>", from, err)
		}
		for k, want := range map[string]string{
			"To":                        "<alice@example.com>",
			"MIME-Version":              "1.0",
			"Content-Type":              "text/plain; charset=UTF-8",
			"Content-Transfer-Encoding": "quoted-printable",
		} {
			if got := m.header.Get(k); got != want {
				t.Errorf("got %s %q, want %q", k, got, want)
			}
		}
		id := m.header.Get("Message-ID")
		if len(id) != len("<@acme.example>")+32 || !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@acme.example>") {
			t.Errorf("got Message-ID %q, want <32 hex digits@acme.example>", id)
		}
		ids[id] = true
	}
	if len(ids) != 2 {
		t.Errorf("got Message-IDs %v, want two different ones", ids)
	}
}

func TestSendModes(t *testing.T) {
	tests := []struct {
		name     string
		opts     mailtest.Options
		change   func(*mail.Config)
		wantTLS  bool
		wantAuth string
	}{
		{"implicit tls with auth", mailtest.Options{TLS: "tls", Username: user, Password: password},
			func(c *mail.Config) { c.TLS = "tls" }, true, user},
		{"implicit tls without auth", mailtest.Options{TLS: "tls"},
			func(c *mail.Config) { c.TLS = "tls"; noLogin(c) }, true, ""},
		{"starttls without auth", mailtest.Options{TLS: "starttls"}, noLogin, true, ""},
		{"starttls checking the name localhost", withAuth,
			func(c *mail.Config) { c.ServerName = "localhost" }, true, user},
		{"plain to localhost", mailtest.Options{TLS: "none"},
			func(c *mail.Config) { c.Host, c.TLS = "localhost", "none"; noLogin(c) }, false, ""},
		{"plain to 127.0.0.1 with auth", mailtest.Options{TLS: "none", Username: user, Password: password},
			func(c *mail.Config) { c.TLS = "none" }, false, user},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts)
			p := provider(t, srv, tt.change)
			if err := p.Send(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			r := srv.Next(t)
			if r.TLS != tt.wantTLS {
				t.Errorf("got TLS %v, want %v", r.TLS, tt.wantTLS)
			}
			if r.Auth != tt.wantAuth {
				t.Errorf("got Auth %q, want %q", r.Auth, tt.wantAuth)
			}
			if got := parse(t, r).body; !strings.Contains(got, msg.Text) {
				t.Errorf("got body %q, want %q in it", got, msg.Text)
			}
		})
	}
}

func TestSendContent(t *testing.T) {
	tests := []struct {
		name        string
		subject     map[string]string
		body        map[string]string
		m           sms.Message
		wantSubject string
		wantBody    string
		wantTo      string // the To header, decoded
	}{
		{
			name: "shipped dutch", m: msg, wantSubject: "Uw inlogcode", wantTo: "<alice@example.com>",
			wantBody: "Uw inlogcode is 482913\r\n\r\nHebt u niet zojuist geprobeerd in te loggen? Meldt u dat dan bij uw beheerder.\r\n",
		},
		{
			name: "shipped english", m: with(msg, func(m *sms.Message) { m.Lang, m.Text = "en", "Your login code is 482913" }),
			wantSubject: "Your login code", wantTo: "<alice@example.com>",
			wantBody: "Your login code is 482913\r\n\r\nIf you did not just try to log in, please tell your administrator.\r\n",
		},
		{
			name: "no language is english", m: with(msg, func(m *sms.Message) { m.Lang = "" }),
			wantSubject: "Your login code", wantTo: "<alice@example.com>",
			wantBody: "Uw inlogcode is 482913\r\n\r\nIf you did not just try to log in, please tell your administrator.\r\n",
		},
		{
			name: "unknown language is english", m: with(msg, func(m *sms.Message) { m.Lang = "fr" }),
			wantSubject: "Your login code", wantTo: "<alice@example.com>",
			wantBody: "Uw inlogcode is 482913\r\n\r\nIf you did not just try to log in, please tell your administrator.\r\n",
		},
		{
			name: "region falls back to its language", m: with(msg, func(m *sms.Message) { m.Lang = "nl-BE" }),
			wantSubject: "Uw inlogcode", wantTo: "<alice@example.com>",
			wantBody: "Uw inlogcode is 482913\r\n\r\nHebt u niet zojuist geprobeerd in te loggen? Meldt u dat dan bij uw beheerder.\r\n",
		},
		{
			name:    "utf-8 round trip",
			subject: map[string]string{"nl": "Inlogcode voor Zoë – {{len .Code}} cijfers"},
			body:    map[string]string{"nl": "Beste Zoë,\n\n{{.Text}}\n.\n..twee punten\nGroet, één team " + strings.Repeat("ë", 60) + "\n"},
			m:       with(msg, func(m *sms.Message) { m.To = "Zoë de Vries <zoe@example.com>" }),

			wantSubject: "Inlogcode voor Zoë – 6 cijfers",
			wantBody:    "Beste Zoë,\r\n\r\nUw inlogcode is 482913\r\n.\r\n..twee punten\r\nGroet, één team " + strings.Repeat("ë", 60) + "\r\n",
			wantTo:      "Zoë de Vries <zoe@example.com>",
		},
		{
			name:        "line breaks in the subject stay in the subject",
			subject:     map[string]string{"en": "Code for {{.Text}}"},
			m:           with(msg, func(m *sms.Message) { m.Lang, m.Text = "en", "x\r\nBcc: mallory@example.com\n\nbody" }),
			wantSubject: "Code for x Bcc: mallory@example.com body", wantTo: "<alice@example.com>",
			wantBody: "x\r\nBcc: mallory@example.com\r\n\r\nbody\r\n\r\nIf you did not just try to log in, please tell your administrator.\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, mailtest.Options{TLS: "none"})
			p := provider(t, srv, func(c *mail.Config) {
				c.TLS, c.Subject, c.Body = "none", tt.subject, tt.body
				noLogin(c)
			})
			if err := p.Send(context.Background(), tt.m); err != nil {
				t.Fatal(err)
			}
			m := parse(t, srv.Next(t))
			if m.subject != tt.wantSubject {
				t.Errorf("got subject %q, want %q", m.subject, tt.wantSubject)
			}
			if m.body != tt.wantBody {
				t.Errorf("got body %q, want %q", m.body, tt.wantBody)
			}
			if got, err := new(mime.WordDecoder).DecodeHeader(m.header.Get("To")); got != tt.wantTo {
				t.Errorf("got To %q (%v), want %q", got, err, tt.wantTo)
			}
			if bcc := m.header.Get("Bcc"); bcc != "" {
				t.Errorf("got Bcc %q, want none", bcc)
			}
		})
	}
}

func with(m sms.Message, change func(*sms.Message)) sms.Message {
	change(&m)
	return m
}

func TestSendUsesNowAndRand(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{TLS: "none"})
	now := time.Date(2026, 3, 9, 14, 5, 7, 0, time.FixedZone("CET", 3600))
	p := provider(t, srv, func(c *mail.Config) {
		c.TLS = "none"
		noLogin(c)
		c.Now = func() time.Time { return now }
		c.Rand = bytes.NewReader(bytes.Repeat([]byte{0xab}, 16))
	})
	if err := p.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	m := parse(t, srv.Next(t))
	if got, want := m.header.Get("Date"), "Mon, 09 Mar 2026 14:05:07 +0100"; got != want {
		t.Errorf("got Date %q, want %q", got, want)
	}
	if got, want := m.header.Get("Message-ID"), "<"+strings.Repeat("ab", 16)+"@acme.example>"; got != want {
		t.Errorf("got Message-ID %q, want %q", got, want)
	}
	// The reader is empty now: no Message-ID, no message.
	err := p.Send(context.Background(), msg)
	if err == nil || !strings.Contains(err.Error(), "message-id: ") {
		t.Errorf("got %v, want a message-id error", err)
	}
	nothingDelivered(t, srv)
}
