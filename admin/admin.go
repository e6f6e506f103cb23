// Package admin carries out the administrator's commands (users, TOTP
// enrolment, the audit log) against the store. The same operations run in
// the CLI's own process when the server is stopped, and inside the server,
// reached over a local socket, while it runs: bbolt lets one process open
// the file.
package admin

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/otpgate/otpgate/phone"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

// Request is one command. Fields not used by the command are empty.
type Request struct {
	// Op is the command: "user add", "user set", "user show", "user list",
	// "user delete", "user totp", "audit".
	Op   string `json:"op"`
	Name string `json:"name,omitempty"`
	// User carries the flags of "user add" and "user set"; nil fields are
	// left unchanged.
	User *UserChange `json:"user,omitempty"`
	// TOTPSecret is an imported base32 secret for "user totp"; empty
	// means make a new one.
	TOTPSecret string `json:"totp_secret,omitempty"`
	// Code confirms a pending TOTP ("user totp --confirm").
	Code string `json:"code,omitempty"`
	// Path is the file "backup" writes, absolute.
	Path string `json:"path,omitempty"`
	// Data is the CSV of "user import".
	Data []byte `json:"data,omitempty"`
	// Update lets "user import" change users that exist.
	Update bool `json:"update,omitempty"`
	// AllowShortSecret lets "user totp --secret" and "user import" take a
	// secret of 80 to 127 bits, for migrations.
	AllowShortSecret bool `json:"allow_short_secret,omitempty"`
	// WithSecrets puts TOTP secrets in "user export".
	WithSecrets bool `json:"with_secrets,omitempty"`
	// Audit filters "audit".
	Audit *AuditQuery `json:"audit,omitempty"`
	// Invite carries the flags of "user invite".
	Invite *InviteFlags `json:"invite,omitempty"`
}

// UserChange is what "user add" and "user set" change.
type UserChange struct {
	Tenant       *string  `json:"tenant,omitempty"`
	Phone        *string  `json:"phone,omitempty"`
	Email        *string  `json:"email,omitempty"`
	Method       *string  `json:"method,omitempty"`
	BackupMethod *string  `json:"backup_method,omitempty"`
	TwoFactor    *string  `json:"two_factor,omitempty"`
	AddHomeIPs   []string `json:"add_home_ips,omitempty"`
	ClearHomeIPs bool     `json:"clear_home_ips,omitempty"`
	// AddReply are reply attributes ("Filter-Id=admins") to add; one of
	// an attribute the user has replaces it. ClearReply removes them all
	// first.
	AddReply   []string `json:"add_reply,omitempty"`
	ClearReply bool     `json:"clear_reply,omitempty"`
	// PasswordHash is a bcrypt hash made by the CLI, so that the password
	// itself never crosses the socket.
	PasswordHash *string `json:"password_hash,omitempty"`
}

// AuditQuery filters the audit log.
type AuditQuery struct {
	User  string `json:"user,omitempty"`
	Limit int    `json:"limit,omitempty"`
	JSON  bool   `json:"json,omitempty"`
	// Since keeps entries no older than this; zero means all.
	Since time.Duration `json:"since,omitempty"`
}

// Reply is the outcome of a command.
type Reply struct {
	// Output is printed on standard output.
	Output string `json:"output,omitempty"`
	// Error is printed on standard error; empty means success.
	Error string `json:"error,omitempty"`
	// Usage marks an error as the caller's mistake (exit status 2) rather
	// than a failure (exit status 1).
	Usage bool `json:"usage,omitempty"`
	// URI is the otpauth:// link made by "user totp".
	URI string `json:"uri,omitempty"`
	// More marks one part of a long output ("user list", "user export"),
	// sent as it is made: more replies follow, the last without More.
	More bool `json:"more,omitempty"`
}

// Service runs commands against an open store.
type Service struct {
	DB  *store.DB
	Key *secret.Key
	// Tenants are the configured tenants, for checking names and methods.
	Tenants []policy.Tenant
	// Issuer names the service in authenticator apps.
	Issuer string
	// Now and Rand default to time.Now and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
	// Reload re-reads the configuration of a running server and returns
	// its tenants and what to tell; nil means no server runs.
	Reload func() ([]policy.Tenant, string, error)
	// PublicURL is where users open otpgate's web page, for invitation
	// links; empty means none can be made.
	PublicURL string
	// Inviter sends invitation links; nil means they can only be printed.
	Inviter Inviter

	mu   sync.Mutex         // one command at a time
	part func(string) error // where the command in progress sends its output's parts; nil gathers it
}

// usageError is a mistake in what the admin typed.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Its text is one line: a name or value in it that holds a line feed or
// another control character shows it escaped (see [Printable]).
func usagef(format string, args ...any) error {
	return usageError{Printable(fmt.Sprintf(format, args...))}
}

// failf is an error that depends on what the store holds (no such user,
// one that exists already) rather than on how the command was typed: exit
// status 1, not 2.
// Its text is one line, as usagef's.
func failf(format string, args ...any) error {
	return errors.New(Printable(fmt.Sprintf(format, args...)))
}

// clip shortens a name or value the admin gave for echoing it in an
// error: at most 64 bytes, cut on a character boundary.
func clip(s string) string {
	const most = 64
	if len(s) <= most {
		return s
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes)", len(s))
}

// Do runs one command given by by. A command that changes something is
// recorded in the audit log, done or failed; when its entry cannot be
// written the reply says so as an error. Output and Error are printable
// text: see [Printable].
func (s *Service) Do(by Actor, req Request) Reply {
	return s.DoTo(by, req, nil)
}

// DoTo is Do with the output of a long listing ("user list", "user
// export") handed to part as it is made, a few whole lines at a time,
// instead of being gathered in memory; the Reply returned holds what is
// left. A nil part gathers everything into the Reply, as Do does. An
// error from part ends the listing with that error.
func (s *Service) DoTo(by Actor, req Request, part func(output string) error) Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.part = part
	defer func() { s.part = nil }()
	out, uri, imported, err := s.do(req)
	rep := Reply{Output: printableText(out), URI: uri}
	if err != nil {
		var u usageError
		rep.Error, rep.Usage = err.Error(), errors.As(err, &u)
	}
	if audited[req.Op] {
		if aerr := s.record(by, req, imported, err); aerr != nil {
			if err == nil {
				rep.Error = "done, but its audit entry was not written: " + aerr.Error()
			} else {
				rep.Error += "\n(and its audit entry was not written: " + aerr.Error() + ")"
			}
			rep.Usage = false
		}
	}
	rep.Error = printableText(rep.Error)
	return rep
}

func (s *Service) do(req Request) (out, uri string, imported []store.User, err error) {
	switch req.Op {
	case "user add":
		out, err = s.addUser(req.Name, req.User)
	case "user set":
		out, err = s.setUser(req.Name, req.User)
	case "user show":
		out, err = s.showUser(req.Name)
	case "user list":
		out, err = s.listUsers()
	case "user delete":
		out, err = s.deleteUser(req.Name)
	case "user totp":
		if req.Code != "" {
			out, err = s.confirmTOTP(req.Name, req.Code)
		} else {
			out, uri, err = s.enrolTOTP(req.Name, req.TOTPSecret, req.AllowShortSecret)
		}
	case "user import":
		out, imported, err = s.importUsers(req.Data, Import{Update: req.Update, AllowShortSecret: req.AllowShortSecret})
	case "user export":
		out, err = s.exportUsers(req.WithSecrets)
	case "user recovery-codes":
		out, err = s.recoveryCodes(req.Name)
	case "user reset":
		out, err = s.resetUser(req.Name)
	case "user unlock":
		out, err = s.unlockUser(req.Name)
	case "user invite":
		out, err = s.invite(req.Name, req.Invite)
	case "backup":
		out, err = s.backup(req.Path)
	case "cluster status":
		out, err = s.clusterStatus()
	case "reload":
		if s.Reload == nil {
			return "", "", nil, usagef("no server is running with this configuration, so there is nothing to reload; start it with: otpgate serve")
		}
		var tenants []policy.Tenant
		tenants, out, err = s.Reload()
		if err == nil {
			s.Tenants = tenants
		}
	case "audit":
		q := AuditQuery{}
		if req.Audit != nil {
			q = *req.Audit
		}
		out, err = s.audit(q)
	default:
		err = usagef("unknown command %q", req.Op)
	}
	return out, uri, imported, err
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) tenant(name string) *policy.Tenant {
	for i := range s.Tenants {
		if s.Tenants[i].Name == name {
			return &s.Tenants[i]
		}
	}
	return nil
}

func (s *Service) tenantNames() string {
	names := make([]string, len(s.Tenants))
	for i, t := range s.Tenants {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

// checkName refuses names a gateway could not send or a terminal could not show.
func checkName(name string) error {
	if name == "" {
		return usagef("a user name is needed, for example: otpgate user add alice")
	}
	if len(name) > 253 || Printable(name) != name {
		return usagef("user name %q: at most 253 bytes (a RADIUS attribute's limit), and no control or invisible characters", clip(name))
	}
	return nil
}

// parseHomeIP accepts an address or a network.
func parseHomeIP(label, s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, usagef("%s %q: want an address such as 203.0.113.7 or a network such as 203.0.113.0/29", label, clip(s))
}

// normalizePhone writes a number in E.164 form, taking numbers without a
// country code to be in the tenant's country (cc, "" when it has none).
func normalizePhone(label, s, cc string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	p, err := phone.Parse(s, cc)
	if err != nil {
		return "", usagef("%s: %v", label, err)
	}
	return p, nil
}

func checkEmail(label, s string) error {
	at := strings.LastIndexByte(s, '@')
	if s != "" && (at < 1 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n<>,;")) {
		return usagef("%s %q: want an address such as alice@example.com", label, clip(s))
	}
	return nil
}

func checkMethod(label, m string) error {
	if m != "" && !policy.IsMethod(m) {
		return usagef("%s %q: want one of %s (or none)", label, clip(m), strings.Join(policy.AllMethods, ", "))
	}
	return nil
}
