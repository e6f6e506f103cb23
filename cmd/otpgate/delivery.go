package main

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/mail"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/sms"
)

// deliveryConfig is the delivery section: the providers, and which of
// them each channel uses, in order.
type deliveryConfig struct {
	AllowConsole bool             `mapstructure:"allow_console"`
	Providers    []providerConfig `mapstructure:"providers"`
	SMS          []string         `mapstructure:"sms"`
	Voice        []string         `mapstructure:"voice"`
	Email        []string         `mapstructure:"email"`
}

type providerConfig struct {
	Name    string        `mapstructure:"name"`
	Type    string        `mapstructure:"type"`
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxInFlight bounds the messages the provider is sending at once;
	// zero means 32.
	MaxInFlight int            `mapstructure:"max_in_flight"`
	HTTP        *httpConfig    `mapstructure:"http"`
	Command     *commandConfig `mapstructure:"command"`
	SMTP        *smtpConfig    `mapstructure:"smtp"`
}

type httpConfig struct {
	Method       string   `mapstructure:"method"`
	URL          string   `mapstructure:"url"`
	Headers      []string `mapstructure:"headers"`
	Params       []string `mapstructure:"params"`
	Encoding     string   `mapstructure:"encoding"`
	Body         string   `mapstructure:"body"`
	ContentType  string   `mapstructure:"content_type"`
	Username     string   `mapstructure:"username"`
	Password     string   `mapstructure:"password"`
	PasswordFile string   `mapstructure:"password_file"`
	Success      []int    `mapstructure:"success"`
}

type commandConfig struct {
	Path string   `mapstructure:"path"`
	Args []string `mapstructure:"args"`
}

type smtpConfig struct {
	Host         string            `mapstructure:"host"`
	Port         int               `mapstructure:"port"`
	TLS          string            `mapstructure:"tls"`
	CAFile       string            `mapstructure:"ca_file"`
	ServerName   string            `mapstructure:"server_name"`
	Username     string            `mapstructure:"username"`
	Password     string            `mapstructure:"password"`
	PasswordFile string            `mapstructure:"password_file"`
	From         string            `mapstructure:"from"`
	Subject      map[string]string `mapstructure:"subject"`
	Body         map[string]string `mapstructure:"body"`
	Helo         string            `mapstructure:"helo"`
}

// channels are the delivery channels, each a method of the same name.
var channels = []string{policy.MethodSMS, policy.MethodVoice, policy.MethodEmail}

// chains returns the provider names configured for each channel.
func (d deliveryConfig) chains() map[string][]string {
	return map[string][]string{policy.MethodSMS: d.SMS, policy.MethodVoice: d.Voice, policy.MethodEmail: d.Email}
}

// checkDelivery validates the delivery section: that every provider can be
// built, that every name a channel lists exists, and that console is not
// relied on in production without being allowed.
func (c *config) checkDelivery(tenants []policy.Tenant, p *problems) {
	d := c.Delivery
	names := map[string]bool{"console": true}
	for i, pc := range d.Providers {
		key := fmt.Sprintf("delivery.providers[%d]", i)
		if pc.Name != "" {
			key = fmt.Sprintf("%s (%s)", key, pc.Name)
		}
		switch {
		case pc.Name == "":
			p.add(key+".name", "is missing")
		case pc.Name == "console":
			p.add(key+".name", "console is built in; give your provider another name")
		case names[pc.Name]:
			p.add(key+".name", "%q is used twice", pc.Name)
		}
		names[pc.Name] = true
		if pc.Timeout < 0 || pc.Timeout > time.Minute {
			p.add(key+".timeout", "%s is out of range, want up to 1m", pc.Timeout)
		}
		if pc.MaxInFlight < 0 || pc.MaxInFlight > 10_000 {
			p.add(key+".max_in_flight", "%d is out of range, want 1 to 10000 (0: the default, 32)", pc.MaxInFlight)
		}
		if _, err := c.buildProvider(pc, nil); err != nil {
			p.add(key, "%v", err)
		}
	}
	chains := d.chains()
	for _, ch := range channels {
		for i, n := range chains[ch] {
			if !names[n] {
				p.add(fmt.Sprintf("delivery.%s[%d]", ch, i), "%q is not a provider; name one of delivery.providers or console", n)
			}
		}
	}
	if d.AllowConsole {
		return
	}
	for i, t := range tenants {
		if t.Mode != policy.ModeRequired {
			continue
		}
		for _, ch := range channels {
			if t.Methods != nil && !slices.Contains(t.Methods, ch) {
				continue
			}
			if slices.Contains(chains[ch], "console") {
				p.add(fmt.Sprintf("delivery.%s", ch), "console writes codes to the log instead of sending them, and tenant %s (tenants[%d]) requires a code and allows %s; "+
					"configure a real provider, or set delivery.allow_console: true to try otpgate out", t.Name, i, ch)
			}
		}
	}
}

// deliveryWarnings lists methods tenants allow that have no provider;
// a tenant in mode off asks for no code, so its methods do not count.
func (s *settings) deliveryWarnings() []string {
	var out []string
	chains := s.delivery.chains()
	for _, t := range s.tenants {
		if t.Mode == policy.ModeOff {
			continue
		}
		for _, m := range t.Methods {
			if slices.Contains(channels, m) && len(chains[m]) == 0 {
				out = append(out, fmt.Sprintf("tenant %s allows %s, but delivery.%s names no provider: nobody can get a code that way", t.Name, m, m))
			}
		}
	}
	return out
}

// senders builds the providers and returns a chain for each channel that
// has any.
func (c *config) senders(log *slog.Logger) (map[string]policy.Sender, error) {
	built := map[string]sms.Provider{"console": sms.Console{Log: log}}
	for _, pc := range c.Delivery.Providers {
		pr, err := c.buildProvider(pc, log)
		if err != nil {
			return nil, fmt.Errorf("delivery provider %s: %w", pc.Name, err)
		}
		built[pc.Name] = sms.Limit(pr, cmp.Or(pc.MaxInFlight, 32))
	}
	out := map[string]policy.Sender{}
	for ch, names := range c.Delivery.chains() {
		var chain sms.Chain
		for _, n := range names {
			chain = append(chain, built[n])
		}
		if len(chain) > 0 {
			out[ch] = chain
		}
	}
	return out, nil
}

// buildProvider makes one provider from its configuration.
func (c *config) buildProvider(pc providerConfig, log *slog.Logger) (sms.Provider, error) {
	blocks := 0
	for _, set := range []bool{pc.HTTP != nil, pc.Command != nil, pc.SMTP != nil} {
		if set {
			blocks++
		}
	}
	if blocks > 1 {
		return nil, fmt.Errorf("give one of http, command, smtp")
	}
	switch pc.Type {
	case "http":
		if pc.HTTP == nil {
			return nil, fmt.Errorf("type http needs an http block")
		}
		h := pc.HTTP
		pw, err := c.secretValue(h.Password, h.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("http.%w", err)
		}
		headers, err := pairs("headers", h.Headers, ":")
		if err != nil {
			return nil, fmt.Errorf("http.%w", err)
		}
		params, err := pairs("params", h.Params, "=")
		if err != nil {
			return nil, fmt.Errorf("http.%w", err)
		}
		pr, err := sms.NewHTTP(pc.Name, sms.HTTPConfig{
			Method: h.Method, URL: h.URL, Headers: headers, Params: params, Encoding: h.Encoding,
			Body: h.Body, ContentType: h.ContentType, Username: h.Username, Password: pw,
			Success: h.Success, Timeout: pc.Timeout,
		}, nil)
		if err != nil {
			return nil, fmt.Errorf("http.%w", err)
		}
		return pr, nil
	case "command":
		if pc.Command == nil {
			return nil, fmt.Errorf("type command needs a command block")
		}
		pr, err := sms.NewCommand(pc.Name, sms.CommandConfig{Path: pc.Command.Path, Args: pc.Command.Args, Timeout: pc.Timeout})
		if err != nil {
			return nil, fmt.Errorf("command.%w", err)
		}
		return pr, nil
	case "smtp":
		if pc.SMTP == nil {
			return nil, fmt.Errorf("type smtp needs an smtp block")
		}
		m := pc.SMTP
		pw, err := c.secretValue(m.Password, m.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("smtp.%w", err)
		}
		var roots *x509.CertPool
		if m.CAFile != "" {
			pem, err := os.ReadFile(c.path(m.CAFile))
			if err != nil {
				return nil, fmt.Errorf("smtp.ca_file: %w", err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("smtp.ca_file: %s holds no PEM certificate", m.CAFile)
			}
		}
		pr, err := mail.NewSMTP(pc.Name, mail.Config{
			Host: m.Host, Port: m.Port, TLS: m.TLS, RootCAs: roots, ServerName: m.ServerName,
			Username: m.Username, Password: pw, From: m.From, Subject: m.Subject, Body: m.Body,
			HeloName: m.Helo, Timeout: pc.Timeout,
		})
		if err != nil {
			return nil, fmt.Errorf("smtp.%w", err)
		}
		return pr, nil
	case "":
		return nil, fmt.Errorf("type: is missing (http, command or smtp)")
	}
	return nil, fmt.Errorf("type: %q is not one of http, command, smtp", pc.Type)
}

// pairs reads "name=value" (or "Name: value") entries. They are a list,
// not a map, because configuration keys lose their case and parameter
// names must keep theirs.
func pairs(key string, list []string, sep string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(list))
	for i, e := range list {
		name, value, ok := strings.Cut(e, sep)
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%s[%d]: %q is not name%svalue", key, i, e, sep)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s[%d]: %s is given twice", key, i, name)
		}
		out[name] = strings.TrimSpace(value)
	}
	return out, nil
}

// secretValue returns a secret given inline or in a file.
func (c *config) secretValue(inline, file string) (string, error) {
	switch {
	case inline != "" && file != "":
		return "", fmt.Errorf("password: give password or password_file, not both")
	case file != "":
		b, err := os.ReadFile(c.path(file))
		if err != nil {
			return "", fmt.Errorf("password_file: %w", err)
		}
		return string(bytes.TrimRight(b, "\r\n")), nil
	}
	return strings.TrimSpace(inline), nil
}
