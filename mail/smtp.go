// Package mail delivers one-time codes by e-mail over SMTP, as an
// sms.Provider, so that e-mail is one more channel behind the interface the
// decision uses.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/smtp"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/otpgate/otpgate/sms"
)

// Config is how to reach the SMTP server and what the mail says.
type Config struct {
	// Host is the SMTP server's name or address. Required.
	Host string
	// Port is the TCP port; zero means 587 for starttls, 465 for tls and
	// 25 for none.
	Port int
	// TLS is "starttls" (the default: plain, then upgraded, and refused if
	// the server does not offer it), "tls" (TLS from the first byte) or
	// "none" (plain, allowed only to localhost).
	TLS string
	// RootCAs verify the server's certificate; nil means the system's.
	RootCAs *x509.CertPool
	// ServerName is the name the certificate must carry; empty means Host.
	ServerName string
	// Username and Password log in with AUTH PLAIN; empty means no login.
	Username, Password string
	// From is the sender, "Name <address>" or a bare address. Required.
	From string
	// Subject and Body are text/template texts by language tag over the
	// sms.Message (.To .Text .Code .Lang .Channel). A language missing here
	// uses the shipped text in that language, or else English.
	Subject, Body map[string]string
	// HeloName is the name sent in EHLO; empty means this host's name.
	HeloName string
	// Timeout bounds one whole delivery; zero means 15 seconds.
	Timeout time.Duration
}

// Shipped texts; {{.Text}} is the tenant's code_text, code included.
var (
	defaultSubject = map[string]string{"en": "Your login code", "nl": "Uw inlogcode"}
	defaultBody    = map[string]string{
		"en": "{{.Text}}\n\nThe code is valid for a few minutes. If you did not just try to log in, tell your administrator.\n",
		"nl": "{{.Text}}\n\nDe code is enkele minuten geldig. Hebt u niet zojuist geprobeerd in te loggen? Meld dit dan aan uw beheerder.\n",
	}
)

// SMTP sends messages through one SMTP server.
type SMTP struct {
	name    string
	c       Config
	addr    string
	from    *netmail.Address
	domain  string // of From, for Message-IDs
	subject map[string]*template.Template
	body    map[string]*template.Template
}

// NewSMTP checks c and makes a provider called name. Its errors name the
// field at fault.
func NewSMTP(name string, c Config) (*SMTP, error) {
	var problems []error
	bad := func(field, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.TLS == "" {
		c.TLS = "starttls"
	}
	switch c.TLS {
	case "starttls", "tls", "none":
	default:
		bad("tls", "%q is not one of starttls, tls, none", c.TLS)
	}
	if c.Host == "" {
		bad("host", "is missing")
	} else if c.TLS == "none" && !isLoopback(c.Host) {
		bad("tls", "none sends the code in clear; it is allowed only to localhost, not %s", c.Host)
	}
	if c.Port == 0 {
		c.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[c.TLS]
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("port", "%d is not a TCP port", c.Port)
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	if c.HeloName == "" {
		c.HeloName, _ = os.Hostname()
		if c.HeloName == "" {
			c.HeloName = "localhost"
		}
	}
	s := &SMTP{name: name, c: c, addr: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	from, err := netmail.ParseAddress(c.From)
	if err != nil || c.From == "" {
		bad("from", "%q is not an address such as \"Example <otp@example.com>\"", c.From)
	} else {
		s.from = from
		s.domain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	}
	var errs []error
	s.subject, errs = parseTemplates("subject", defaultSubject, c.Subject)
	problems = append(problems, errs...)
	s.body, errs = parseTemplates("body", defaultBody, c.Body)
	problems = append(problems, errs...)
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return s, nil
}

// parseTemplates parses the shipped texts overlaid with the configured
// ones, and renders each once so that a mistake shows at start.
func parseTemplates(field string, shipped, configured map[string]string) (map[string]*template.Template, []error) {
	texts := map[string]string{}
	for lang, t := range shipped {
		texts[lang] = t
	}
	for lang, t := range configured {
		texts[lang] = t
	}
	var errs []error
	out := map[string]*template.Template{}
	sample := sms.Message{Channel: "email", To: "alice@example.com", Text: "Your login code is 123456", Code: "123456", Lang: "en"}
	for _, lang := range slices.Sorted(maps.Keys(texts)) {
		t, err := template.New(field + "." + lang).Option("missingkey=error").Parse(texts[lang])
		if err == nil {
			err = t.Execute(&bytes.Buffer{}, sample)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w", field, lang, err))
			continue
		}
		out[lang] = t
	}
	return out, errs
}

// Name is the provider's configured name.
func (s *SMTP) Name() string { return s.name }

// Send mails m to m.To. Its errors never carry the code, the text or the
// password.
func (s *SMTP) Send(ctx context.Context, m sms.Message) error {
	err := s.send(ctx, m)
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, secret := range []string{m.Code, m.Text, s.c.Password} {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "…")
		}
	}
	return errors.New(msg)
}

func (s *SMTP) send(ctx context.Context, m sms.Message) error {
	if strings.ContainsAny(m.To, "\r\n") {
		return errors.New("recipient holds a line break")
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("recipient is not an e-mail address")
	}
	msg, err := s.compose(to, m)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, s.c.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.addr, unwrapOp(err))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tlsConfig := &tls.Config{ServerName: s.serverName(), RootCAs: s.c.RootCAs, MinVersion: tls.VersionTLS12}
	if s.c.TLS == "tls" {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls with %s: %w", s.addr, s.failure(ctx, err))
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.c.Host)
	if err != nil {
		return fmt.Errorf("greeting from %s: %w", s.addr, s.failure(ctx, err))
	}
	defer c.Close()
	if err := c.Hello(s.c.HeloName); err != nil {
		return fmt.Errorf("ehlo: %w", s.failure(ctx, err))
	}
	if s.c.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("%s does not offer STARTTLS; the code is not sent in clear", s.addr)
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return fmt.Errorf("starttls: %w", s.failure(ctx, err))
		}
	}
	if s.c.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("%s does not offer AUTH", s.addr)
		}
		// PlainAuth itself refuses to send the password without TLS,
		// except to localhost.
		if err := c.Auth(smtp.PlainAuth("", s.c.Username, s.c.Password, s.c.Host)); err != nil {
			return fmt.Errorf("auth as %s: %w", s.c.Username, s.failure(ctx, err))
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("mail from: %w", s.failure(ctx, err))
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("rcpt to: %w", s.failure(ctx, err))
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", s.failure(ctx, err))
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("data: %w", s.failure(ctx, err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", s.failure(ctx, err))
	}
	c.Quit() // the message is accepted; a lost goodbye changes nothing
	return nil
}

// compose writes the whole message, headers and body, with CRLF endings.
func (s *SMTP) compose(to *netmail.Address, m sms.Message) ([]byte, error) {
	subject, err := render(s.subject, m)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	body, err := render(s.body, m)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", s.from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("UTF-8", strings.Join(strings.Fields(subject), " ")))
	header("Date", time.Now().Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id)+"@"+s.domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=UTF-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")))
	qp.Close()
	return b.Bytes(), nil
}

// render runs the template of m's language, or English.
func render(ts map[string]*template.Template, m sms.Message) (string, error) {
	t := ts[m.Lang]
	if t == nil {
		t = ts["en"]
	}
	var b strings.Builder
	if err := t.Execute(&b, m); err != nil {
		return "", err
	}
	return b.String(), nil
}

func (s *SMTP) serverName() string {
	if s.c.ServerName != "" {
		return s.c.ServerName
	}
	return s.c.Host
}

// failure says "timeout" or "cancelled" when ctx ended the conversation,
// which otherwise shows as a closed connection.
func (s *SMTP) failure(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("timeout after %s: %w", s.c.Timeout, ctxErr)
		}
		return ctxErr
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		// The connection's deadline, which is ctx's, passed first.
		return fmt.Errorf("timeout after %s: %w", s.c.Timeout, context.DeadlineExceeded)
	}
	return unwrapOp(err)
}

// unwrapOp drops the addresses a *net.OpError repeats.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
