package mail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/mail"
)

func TestNewSMTP(t *testing.T) {
	ok := mail.Config{Host: "smtp.example.com", From: "otp@example.com"}
	change := func(f func(*mail.Config)) mail.Config {
		c := ok
		f(&c)
		return c
	}
	tests := []struct {
		name string
		c    mail.Config
		want []string // each line of the error starts with one, in order; none means no error
	}{
		{"defaults", ok, nil},
		{"none to localhost", change(func(c *mail.Config) { c.Host, c.TLS = "localhost", "none" }), nil},
		{"none to LOCALHOST", change(func(c *mail.Config) { c.Host, c.TLS = "LOCALHOST", "none" }), nil},
		{"none to 127.0.0.53", change(func(c *mail.Config) { c.Host, c.TLS = "127.0.0.53", "none" }), nil},
		{"none to ::1", change(func(c *mail.Config) { c.Host, c.TLS = "::1", "none" }), nil},
		{"named sender", change(func(c *mail.Config) { c.From = `"Acme, IT" <otp@example.com>` }), nil},
		{"templates for another language", change(func(c *mail.Config) {
			c.Subject = map[string]string{"de": "Ihr Code"}
			c.Body = map[string]string{"de": "{{.Text}}", "NL-be": "{{.Code}}"}
		}), nil},
		{"none to another host", change(func(c *mail.Config) { c.TLS = "none" }),
			[]string{"tls: none sends the code in clear; it is allowed only to localhost, not smtp.example.com"}},
		{"none to a private address", change(func(c *mail.Config) { c.Host, c.TLS = "10.0.0.1", "none" }),
			[]string{"tls: none sends the code in clear; it is allowed only to localhost, not 10.0.0.1"}},
		{"unknown tls", change(func(c *mail.Config) { c.TLS = "ssl" }),
			[]string{`tls: "ssl" is not one of starttls, tls, none`}},
		{"nothing", mail.Config{},
			[]string{"host: is missing", "from: is missing"}},
		{"bad from", change(func(c *mail.Config) { c.From = "not an address" }),
			[]string{`from: "not an address" is not an address such as "Example <otp@example.com>"`}},
		{"two senders", change(func(c *mail.Config) { c.From = "a@example.com, b@example.com" }),
			[]string{`from: "a@example.com, b@example.com" is not an address`}},
		{"port", change(func(c *mail.Config) { c.Port = 70000 }),
			[]string{"port: 70000 is not a TCP port"}},
		{"timeout", change(func(c *mail.Config) { c.Timeout = -time.Second }),
			[]string{"timeout: must not be negative"}},
		{"helo", change(func(c *mail.Config) { c.HeloName = "otp gate" }),
			[]string{`helo: "otp gate" is not a host name`}},
		{"host", change(func(c *mail.Config) { c.Host = "smtp.example.com\r\nRCPT" }),
			[]string{`host: "smtp.example.com\r\nRCPT" is not a host name or address`}},
		{"template syntax", change(func(c *mail.Config) { c.Body = map[string]string{"en": "{{.Text"} }),
			[]string{"body.en: template: body.en:1: "}},
		{"template field", change(func(c *mail.Config) { c.Subject = map[string]string{"nl": "{{.Nope}}"} }),
			[]string{"subject.nl: template: subject.nl:1:2: executing"}},
		{"language tag", change(func(c *mail.Config) { c.Subject = map[string]string{"n l": "x"} }),
			[]string{`subject: "n l" is not a language tag such as en or nl`}},
		{"all at once", mail.Config{Host: "smtp.example.com", TLS: "none", From: "x", Port: -1,
			Subject: map[string]string{"en": "{{"}, Body: map[string]string{"nl": "{{.Nope}}"}},
			[]string{"tls: ", "port: ", "from: ", "subject.en: ", "body.nl: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := mail.NewSMTP("mail", tt.c)
			if tt.want == nil {
				if err != nil || p == nil {
					t.Fatalf("got %v, want no error", err)
				}
				if p.Name() != "mail" {
					t.Errorf("got Name %q, want mail", p.Name())
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %q, want %d problems: %q", err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("got %q, want it to start with %q", lines[i], w)
				}
			}
		})
	}
}
