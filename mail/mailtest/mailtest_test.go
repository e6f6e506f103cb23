package mailtest_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strconv"
	"testing"

	"github.com/otpgate/otpgate/mail/mailtest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// step sends a line and reads the reply.
type step struct {
	send string
	want int // reply code
}

func TestConversation(t *testing.T) {
	withUser := mailtest.Options{TLS: "none", Username: "u", Password: "p"}
	greet := []step{{"EHLO client.test", 250}}
	tests := []struct {
		name  string
		opts  mailtest.Options
		steps []step
		want  *mailtest.Received // nil: nothing delivered
	}{
		{
			name: "a whole session",
			opts: withUser,
			steps: []step{
				{"NOOP", 250},
				{"BOGUS", 500},
				{"", 500},
				{"MAIL FROM:<a@example.com>", 503},
				{"EHLO", 501},
				{"EHLO client.test", 250},
				{"MAIL FROM:<a@example.com>", 530},
				{"AUTH LOGIN", 334},
				{b64("u"), 334},
				{b64("p"), 235},
				{"AUTH PLAIN " + b64("\x00u\x00p"), 503},
				{"RCPT TO:<b@example.com>", 503},
				{"MAIL FROM:a@example.com", 501},
				{"MAIL FROM:<a@example.com>", 250},
				{"MAIL FROM:<a@example.com>", 503},
				{"RSET", 250},
				{"DATA", 503},
				{"mail from:<a@example.com> SIZE=100", 250},
				{"RCPT TO:<>", 501},
				{"RCPT TO:<b@example.com>", 250},
				{"RCPT TO: <c@example.com>", 250},
				{"DATA", 354},
				{"Subject: hi\r\n\r\n..leading dot\r\n...\r\nlast\r\n.", 250},
				{"QUIT", 221},
			},
			want: &mailtest.Received{From: "a@example.com", To: []string{"b@example.com", "c@example.com"},
				Data: []byte("Subject: hi\r\n\r\n.leading dot\r\n..\r\nlast\r\n"), Auth: "u"},
		},
		{name: "plain with initial response", opts: withUser,
			steps: append(greet, step{"AUTH PLAIN " + b64("\x00u\x00p"), 235}, step{"MAIL FROM:<>", 250})},
		{name: "plain with continuation", opts: withUser,
			steps: append(greet, step{"AUTH PLAIN", 334}, step{b64("admin\x00u\x00p"), 235}, step{"MAIL FROM:<>", 250})},
		{name: "login with initial user", opts: withUser,
			steps: append(greet, step{"AUTH LOGIN " + b64("u"), 334}, step{b64("p"), 235}, step{"MAIL FROM:<>", 250})},
		{name: "wrong password", opts: withUser,
			steps: append(greet, step{"AUTH PLAIN " + b64("\x00u\x00x"), 535}, step{"MAIL FROM:<>", 530})},
		{name: "wrong user", opts: withUser,
			steps: append(greet, step{"AUTH LOGIN", 334}, step{b64("v"), 334}, step{b64("p"), 535})},
		{name: "cancelled", opts: withUser,
			steps: append(greet, step{"AUTH LOGIN", 334}, step{"*", 501}, step{"MAIL FROM:<>", 530})},
		{name: "not base64", opts: withUser,
			steps: append(greet, step{"AUTH PLAIN !!", 501})},
		{name: "unknown mechanism", opts: withUser,
			steps: append(greet, step{"AUTH CRAM-MD5", 504}, step{"AUTH", 501})},
		{name: "AUTH before EHLO", opts: withUser,
			steps: []step{{"AUTH PLAIN " + b64("\x00u\x00p"), 503}}},
		{name: "no AUTH without a user", opts: mailtest.Options{TLS: "none"},
			steps: append(greet, step{"AUTH PLAIN " + b64("\x00u\x00p"), 502}, step{"MAIL FROM:<>", 250})},
		{name: "no AUTH before STARTTLS", opts: mailtest.Options{TLS: "starttls", Username: "u", Password: "p"},
			steps: append(greet, step{"AUTH PLAIN " + b64("\x00u\x00p"), 502}, step{"MAIL FROM:<>", 530})},
		{name: "no STARTTLS in plain mode", opts: mailtest.Options{TLS: "none"},
			steps: append(greet, step{"STARTTLS", 502})},
		{name: "recipient refused", opts: mailtest.Options{FailRcpt: true},
			steps: append(greet, step{"MAIL FROM:<a@example.com>", 250}, step{"RCPT TO:<b@example.com>", 550}, step{"DATA", 503})},
		{name: "HELO", opts: mailtest.Options{},
			steps: []step{{"HELO client.test", 250}, {"MAIL FROM:<a@example.com>", 250}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts)
			c, err := textproto.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if code, text, err := c.ReadResponse(0); code != 220 {
				t.Fatalf("got greeting %d %q (%v), want 220", code, text, err)
			}
			for i, s := range tt.steps {
				if err := c.PrintfLine("%s", s.send); err != nil {
					t.Fatal(err)
				}
				code, text, err := c.ReadResponse(0)
				if code != s.want {
					t.Fatalf("step %d, %q: got %d %q (%v), want %d", i+1, s.send, code, text, err, s.want)
				}
			}
			if tt.want == nil {
				select {
				case r := <-srv.Messages():
					t.Errorf("got %+v, want nothing delivered", r)
				default:
				}
				return
			}
			if got := srv.Next(t); !equal(got, *tt.want) {
				t.Errorf("got %+v, want %+v", got, *tt.want)
			}
		})
	}
}

func equal(a, b mailtest.Received) bool {
	return a.From == b.From && slices.Equal(a.To, b.To) && bytes.Equal(a.Data, b.Data) && a.Auth == b.Auth && a.TLS == b.TLS
}

// loginAuth is AUTH LOGIN, which net/smtp lacks.
type loginAuth struct{ user, pass string }

func (a loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) { return "LOGIN", nil, nil }

func (a loginAuth) Next(challenge []byte, more bool) ([]byte, error) {
	switch {
	case !more:
		return nil, nil
	case string(challenge) == "Username:":
		return []byte(a.user), nil
	case string(challenge) == "Password:":
		return []byte(a.pass), nil
	}
	return nil, errors.New("unexpected challenge " + string(challenge))
}

// plainLater is AUTH PLAIN that waits for the server's empty challenge.
type plainLater struct{ user, pass string }

func (a plainLater) Start(*smtp.ServerInfo) (string, []byte, error) { return "PLAIN", nil, nil }

func (a plainLater) Next(_ []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	return []byte("\x00" + a.user + "\x00" + a.pass), nil
}

// send runs a whole delivery over c and returns what the server got.
func send(t *testing.T, srv *mailtest.Server, c *smtp.Client, auth smtp.Auth) mailtest.Received {
	t.Helper()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			t.Fatalf("auth: %v", err)
		}
	}
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "Subject: x\r\n\r\n.dot\r\nend\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	return srv.Next(t)
}

func TestSTARTTLS(t *testing.T) {
	tests := []struct {
		name string
		auth func(host string) smtp.Auth
	}{
		{"plain", func(host string) smtp.Auth { return smtp.PlainAuth("", "u", "p", host) }},
		{"plain with continuation", func(string) smtp.Auth { return plainLater{"u", "p"} }},
		{"login", func(string) smtp.Auth { return loginAuth{"u", "p"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, mailtest.Options{TLS: "starttls", Username: "u", Password: "p"})
			c, err := smtp.Dial(srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello("client.test"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := c.Extension("AUTH"); ok {
				t.Errorf("got AUTH offered before TLS, want it hidden")
			}
			if ok, _ := c.Extension("STARTTLS"); !ok {
				t.Fatalf("got no STARTTLS offered, want it")
			}
			if err := c.StartTLS(&tls.Config{RootCAs: srv.CertPool(), ServerName: srv.Host()}); err != nil {
				t.Fatal(err)
			}
			if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
				t.Errorf("got AUTH %v %q after TLS, want PLAIN LOGIN", ok, mechs)
			}
			if ok, _ := c.Extension("STARTTLS"); ok {
				t.Errorf("got STARTTLS offered again over TLS, want not")
			}
			got := send(t, srv, c, tt.auth(srv.Host()))
			want := mailtest.Received{From: "a@example.com", To: []string{"b@example.com"},
				Data: []byte("Subject: x\r\n\r\n.dot\r\nend\r\n"), Auth: "u", TLS: true}
			if !equal(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestImplicitTLS(t *testing.T) {
	for _, name := range []string{"127.0.0.1", "localhost"} {
		t.Run(name, func(t *testing.T) {
			srv := mailtest.NewServer(t, mailtest.Options{TLS: "tls"})
			conn, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: srv.CertPool(), ServerName: name})
			if err != nil {
				t.Fatal(err)
			}
			c, err := smtp.NewClient(conn, name)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := send(t, srv, c, nil); !got.TLS || got.Auth != "" {
				t.Errorf("got TLS %v, Auth %q; want TLS true and no Auth", got.TLS, got.Auth)
			}
		})
	}
}

func TestCertPEM(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{TLS: "tls"})
	if !bytes.HasPrefix(srv.CertPEM(), []byte("-----BEGIN CERTIFICATE-----\n")) {
		t.Errorf("got CertPEM %q, want a PEM certificate", srv.CertPEM())
	}
	if got, want := srv.Addr(), net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())); got != want || srv.Host() != "127.0.0.1" {
		t.Errorf("got Addr %q, Host %q; want %q, 127.0.0.1", got, srv.Host(), want)
	}
}

func TestSeveralConnections(t *testing.T) {
	var conns []*textproto.Conn
	t.Run("server", func(t *testing.T) {
		srv := mailtest.NewServer(t, mailtest.Options{})
		for range 3 {
			c, err := textproto.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		// All three are served at once.
		for i, c := range conns {
			if code, _, err := c.ReadResponse(220); err != nil {
				t.Fatalf("connection %d: got %d (%v), want a greeting", i+1, code, err)
			}
		}
		// The test ends with the connections open; the server must close
		// them rather than wait for them.
	})
	for i, c := range conns {
		if line, err := c.ReadLine(); err == nil {
			t.Errorf("connection %d: got %q after the server stopped, want it closed", i+1, line)
		}
		c.Close()
	}
}
