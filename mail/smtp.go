// Package mail delivers one-time codes by e-mail over SMTP. Its SMTP type
// is an sms.Provider, so e-mail is one more channel behind the interface
// the decision uses; package mailtest runs a real SMTP server for tests.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
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
	// Host is the SMTP server's name or IP address. Required.
	Host string
	// Port is the TCP port; zero means 587 for starttls, 465 for tls and
	// 25 for none.
	Port int
	// TLS is "starttls" (plain, then upgraded; a server that does not
	// offer STARTTLS gets nothing), "tls" (TLS from the first byte) or
	// "none" (plain, allowed only when Host is localhost or a loopback
	// address). Empty means "starttls".
	TLS string
	// RootCAs verify the server's certificate; nil means the system's.
	RootCAs *x509.CertPool
	// ServerName is the name the certificate must carry; empty means Host.
	ServerName string
	// Username and Password log in with AUTH PLAIN, which is only done
	// over TLS or to a loopback host. An empty Username means no login.
	Username, Password string
	// From is the sender, "Name <address>" or a bare address. Required.
	From string
	// Subject and Body are text/template texts by language tag ("en",
	// "nl") over the sms.Message: {{.To}} {{.Text}} {{.Code}} {{.Lang}}
	// {{.Channel}}. A language missing here keeps the shipped text for it;
	// a message in a language with no text at all gets the English one.
	// English and Dutch texts are shipped.
	Subject, Body map[string]string
	// HeloName is the name this host gives in EHLO; empty means its host
	// name, or "otpgate" when that is unknown.
	HeloName string
	// Timeout bounds one whole delivery, from dialling to the server's
	// answer to the message; zero means 15 seconds.
	Timeout time.Duration
	// Now gives the time for the Date header; nil means time.Now.
	Now func() time.Time
	// Rand is read for Message-IDs, by concurrent Sends at once; nil
	// means crypto/rand.Reader.
	Rand io.Reader
}

// SMTP sends messages through one SMTP server. It is safe for concurrent
// use; each Send is a conversation of its own.
type SMTP struct {
	name    string
	c       Config
	addr    string           // host:port
	from    *netmail.Address // parsed Config.From
	domain  string           // of From, for Message-IDs
	subject map[string]*template.Template
	body    map[string]*template.Template
}

// NewSMTP checks c and makes a provider called name. It parses the
// templates up front. Its errors name the field at fault ("from: …",
// "subject.nl: …"), all of them at once.
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
	switch {
	case c.Host == "":
		bad("host", "is missing")
	case strings.ContainsAny(c.Host, " \t\r\n/"):
		bad("host", "%q is not a host name or address", c.Host)
	case c.TLS == "none" && !isLoopback(c.Host):
		bad("tls", "none sends the code in clear; it is allowed only to localhost, not %s", c.Host)
	}
	if c.Port == 0 {
		// Stays 0 when TLS is wrong, which is reported above.
		c.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[c.TLS]
	}
	if c.Port < 0 || c.Port > 65535 {
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
		if c.HeloName == "" || strings.ContainsAny(c.HeloName, " \t\r\n") {
			c.HeloName = "otpgate"
		}
	} else if strings.ContainsAny(c.HeloName, " \t\r\n") {
		bad("helo", "%q is not a host name", c.HeloName)
	}
	if c.Username != "" && strings.ContainsAny(c.Username, "\x00\r\n") {
		bad("username", "holds a NUL or a line break")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	s := &SMTP{name: name, c: c, addr: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.From == "" {
		bad("from", "is missing")
	} else if from, err := netmail.ParseAddress(c.From); err != nil {
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

// Name is the name the provider was made with.
func (s *SMTP) Name() string { return s.name }

// Send mails m to the address m.To and returns nil when the server has
// taken the message. It gives up when ctx is done or the Timeout passes.
// Its errors say which step failed and what the server answered, never the
// text, the code or the password.
func (s *SMTP) Send(ctx context.Context, m sms.Message) error {
	if err := s.send(ctx, m); err != nil {
		return redactError(err, m.Text, m.Code, s.c.Password)
	}
	return nil
}

func (s *SMTP) send(ctx context.Context, m sms.Message) error {
	to, err := recipient(m.To)
	if err != nil {
		return err
	}
	msg, err := s.compose(to, m)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeoutCause(ctx, s.c.Timeout, timeoutError(s.c.Timeout))
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.addr, failure(ctx, err))
	}
	defer raw.Close()
	// Every read and write ends at ctx's deadline, and a cancelled ctx
	// closes the connection under whatever step is waiting.
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	tlsConfig := &tls.Config{ServerName: s.serverName(), RootCAs: s.c.RootCAs, MinVersion: tls.VersionTLS12}
	conn := raw
	if s.c.TLS == "tls" {
		tc := tls.Client(raw, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls with %s: %w", s.addr, failure(ctx, err))
		}
		conn = tc
	}
	// net/smtp knows the connection is TLS by its type, and tells the
	// authenticator.
	c, err := smtp.NewClient(conn, s.c.Host)
	if err != nil {
		return fmt.Errorf("greeting from %s: %w", s.addr, failure(ctx, err))
	}
	defer c.Close()
	if err := c.Hello(s.c.HeloName); err != nil {
		return fmt.Errorf("ehlo: %w", failure(ctx, err))
	}
	if s.c.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("%s does not offer STARTTLS; the code is not sent in clear", s.addr)
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return fmt.Errorf("starttls with %s: %w", s.addr, failure(ctx, err))
		}
	}
	if s.c.Username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return fmt.Errorf("%s does not offer AUTH", s.addr)
		}
		if !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return fmt.Errorf("%s offers AUTH %s, not PLAIN", s.addr, mechs)
		}
		// PlainAuth itself refuses to send the password without TLS
		// except to localhost, 127.0.0.1 and ::1.
		if err := c.Auth(smtp.PlainAuth("", s.c.Username, s.c.Password, s.c.Host)); err != nil {
			return fmt.Errorf("auth as %s: %w", s.c.Username, failure(ctx, err))
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("mail from: %w", failure(ctx, err))
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("rcpt to: %w", failure(ctx, err))
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", failure(ctx, err))
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("data: %w", failure(ctx, err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", failure(ctx, err))
	}
	// The server has the message. A lost goodbye undoes nothing, and
	// calling it a failure would have a Chain send the code again.
	_ = c.Quit()
	return nil
}

func (s *SMTP) serverName() string {
	if s.c.ServerName != "" {
		return s.c.ServerName
	}
	return s.c.Host
}

// failure says why ctx ended the conversation when it did: a timeout or a
// cancellation otherwise shows as a closed connection or an I/O timeout.
func failure(ctx context.Context, err error) error {
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		// The connection's deadline, which is ctx's, has passed: ctx is
		// done or about to be, and its cause says which deadline it was.
		<-ctx.Done()
	}
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	// A *net.OpError repeats the addresses; what it wraps says what went
	// wrong.
	if op, ok := errors.AsType[*net.OpError](err); ok {
		return op.Err
	}
	return err
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
