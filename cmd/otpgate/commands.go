package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otpgate/otpgate/admin"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

func cmdCheckConfig(args []string, stdout io.Writer) error {
	fs := newFlags("check-config")
	configPath := fs.String("config", "", "configuration `FILE` (default: the embedded defaults)")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	s, found, err := readConfig(*configPath)
	if err != nil {
		return err
	}
	// What serve would refuse beyond the file itself, reported with the
	// file's problems in one run.
	p := problems{found}
	warnings := append(s.preflight(&p), s.secretWarnings()...)
	if found == nil {
		warnings = append(warnings, s.deliveryWarnings()...)
	}
	for _, w := range warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if err := errors.Join(p...); err != nil {
		return fmt.Errorf("config %s:\n%w", orDefault(*configPath, "embedded defaults"), err)
	}
	for _, w := range s.userWarnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "configuration OK: %d client(s), %d tenant(s), listening on %s, store %s\n",
		len(s.clients), len(s.tenants), strings.Join(s.listen, " "), s.storePath)
	return nil
}

// userWarnings names the users of the store who cannot log in under this
// configuration (such as one with no method in a required tenant without
// enrolment), asking the running server when there is one. Where there is
// no store yet, or it cannot be read, there is nothing to say.
func (s *settings) userWarnings() []string {
	req := admin.Request{Op: "user list"}
	var list strings.Builder // the listing's parts, as they come
	rep, err := admin.CallTo(s.adminSocket, req, &list)
	if errors.Is(err, admin.ErrNoServer) {
		rep, err = callLocal(s, req, &list)
	}
	if err != nil || rep.Error != "" {
		return nil
	}
	var out []string
	for _, line := range strings.Split(list.String()+rep.Output, "\n") {
		name, _, _ := strings.Cut(line, " ")
		if _, why, ok := strings.Cut(line, "  NO: "); ok {
			out = append(out, fmt.Sprintf("user %s cannot log in: %s", name, why))
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("%d more users cannot log in; otpgate user list names them", len(out)-5))
	}
	return out
}

// userUsage is the overview's lines about users.
func userUsage() string {
	var b strings.Builder
	b.WriteString("otpgate user: manage users\n")
	for _, line := range strings.Split(usage, "\n") {
		if strings.HasPrefix(commandOf(line), "user ") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func cmdUser(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("say what to do with users:\n%s", userUsage())
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "--help", "-h", "-help", "help":
		return errHelp{userUsage()}
	}
	fs := newFlags("user " + sub)
	configPath := fs.String("config", "", "configuration `FILE` (default: the embedded defaults)")
	req := admin.Request{Op: "user " + sub}
	var finish func(admin.Reply) error
	want := 1
	switch sub {
	case "add", "set":
		change := userFlags(fs, sub == "set")
		readPassword := fs.Bool("password-stdin", false, "read a local password from standard input (for clients with password: local)")
		var invite *bool
		if sub == "add" {
			invite = fs.Bool("invite", false, "then send the user an invitation to enrol on the web page (as user invite NAME)")
		}
		pos, err := parse(fs, args, 1)
		if err != nil {
			return err
		}
		req.Name = pos[0]
		req.User = change(setFlags(fs))
		if *readPassword {
			hash, err := hashPassword(stdin)
			if err != nil {
				return err
			}
			req.User.PasswordHash = &hash
		}
		if err := call(*configPath, req, stdout, stderr, nil); err != nil || invite == nil || !*invite {
			return err
		}
		return call(*configPath, admin.Request{Op: "user invite", Name: req.Name}, stdout, stderr, nil)
	case "show", "delete", "recovery-codes", "reset", "unlock":
	case "list":
		want = 0
	case "export":
		want = 0
		fs.BoolVar(&req.WithSecrets, "with-secrets", false, "include TOTP secrets (anyone with the file can make codes)")
	case "import":
		fs.BoolVar(&req.Update, "update", false, "also change users that exist (all or nothing, as adding is)")
		fs.BoolVar(&req.AllowShortSecret, "allow-short-secret", false, "accept totp_secret values of 80 to 127 bits, moved from another system")
		pos, err := parse(fs, args, -1)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usagef("user import needs one CSV file, for example: otpgate user import users.csv (header: %s)", "name,tenant,phone,email,method,backup_method,totp_secret,home_ips")
		}
		data, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		req.Data = data
		return call(*configPath, req, stdout, stderr, nil)
	case "invite":
		req.Invite = &admin.InviteFlags{}
		fs.StringVar(&req.Invite.Via, "via", "", "send the link by `sms|email`, or print it to hand over (default: SMS, else e-mail)")
		fs.DurationVar(&req.Invite.Valid, "valid", 0, "how long the link works, such as 72h (`DURATION`; default 72h)")
	case "totp":
		fs.StringVar(&req.TOTPSecret, "secret", "", "import this base32 `SECRET` (already on the phone: active at once) instead of making a new one")
		fs.StringVar(&req.Code, "confirm", "", "activate the pending secret with a `CODE` from the app")
		fs.BoolVar(&req.AllowShortSecret, "allow-short-secret", false, "accept a --secret of 80 to 127 bits, moved from another system (new secrets need 128)")
		png := fs.String("png", "", "also write the QR code to this PNG `FILE`")
		finish = func(rep admin.Reply) error {
			if *png == "" || rep.URI == "" {
				return nil
			}
			return writePNG(*png, rep.URI)
		}
	default:
		return usagef("unknown user command %q:\n%s", clipArg(sub), userUsage())
	}
	pos, err := parse(fs, args, want)
	if err != nil {
		return err
	}
	if want == 1 {
		req.Name = pos[0]
	}
	return call(*configPath, req, stdout, stderr, finish)
}

// userFlags declares the flags of "user add" and "user set" and returns a
// function that turns the ones given into a change.
func userFlags(fs *flag.FlagSet, isSet bool) func(set map[string]bool) *admin.UserChange {
	tenant := fs.String("tenant", "", "the user's `TENANT`")
	phone := fs.String("phone", "", "mobile `NUMBER`, for example +31612345678 (without country code: the tenant's country_code)")
	email := fs.String("email", "", "e-mail `ADDRESS`")
	method := fs.String("method", "", "primary second factor: `totp|sms|email|voice`")
	backup := fs.String("backup-method", "", "second factor used when the primary cannot be delivered: `totp|sms|email|voice`, or none")
	var homeIPs listFlag
	fs.Var(&homeIPs, "home-ip", "an `IP` or network the user may log in from without a code (repeatable)")
	var reply listFlag
	fs.Var(&reply, "reply", "a reply attribute for the user's Accepts, `Name=value` such as Filter-Id=admins; it replaces the tenant's and the client's of that name (repeatable)")
	var twoFA *string
	var clear, clearReply *bool
	if isSet {
		twoFA = fs.String("2fa", "", "`on`, off, or tenant (follow the tenant's mode)")
		clear = fs.Bool("clear-home-ips", false, "remove all home IPs (before adding any --home-ip)")
		clearReply = fs.Bool("clear-reply", false, "remove all the user's reply attributes (before adding any --reply)")
	}
	return func(set map[string]bool) *admin.UserChange {
		ch := &admin.UserChange{}
		ch.Tenant = ptrIf(set["tenant"], *tenant)
		ch.Phone = ptrIf(set["phone"], *phone)
		ch.Email = ptrIf(set["email"], *email)
		ch.Method = ptrIf(set["method"], *method)
		ch.BackupMethod = ptrIf(set["backup-method"], *backup)
		ch.AddHomeIPs = homeIPs
		ch.AddReply = reply
		if isSet {
			ch.TwoFactor = ptrIf(set["2fa"], *twoFA)
			ch.ClearHomeIPs = *clear
			ch.ClearReply = *clearReply
		}
		return ch
	}
}

func cmdAudit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit")
	configPath := fs.String("config", "", "configuration `FILE` (default: the embedded defaults)")
	q := &admin.AuditQuery{}
	fs.StringVar(&q.User, "user", "", "only this user's `NAME`")
	fs.IntVar(&q.Limit, "limit", 50, "at most `N` entries, the newest (0: all)")
	fs.BoolVar(&q.JSON, "json", false, "one JSON object per line")
	fs.Var((*sinceFlag)(&q.Since), "since", "only entries of the last `DURATION`, such as 30m, 24h or 7d")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if q.Since < 0 {
		return usagef("--since %s: want a positive duration such as 24h", q.Since)
	}
	if q.Limit < 0 {
		return usagef("--limit %d: want 0 (all) or more", q.Limit)
	}
	if q.Limit == 0 {
		q.Limit = -1
	}
	return call(*configPath, admin.Request{Op: "audit", Audit: q}, stdout, stderr, nil)
}

func cmdBackup(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup")
	configPath := fs.String("config", "", "configuration `FILE` (default: the embedded defaults)")
	pos, err := parse(fs, args, -1)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("backup needs one file name, for example: otpgate backup /var/backups/otpgate.db")
	}
	path, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	return call(*configPath, admin.Request{Op: "backup", Path: path}, stdout, stderr, nil)
}

// sinceFlag is audit's --since: a Go duration or a number of days.
type sinceFlag time.Duration

func (f *sinceFlag) String() string { return time.Duration(*f).String() }

func (f *sinceFlag) Set(v string) error {
	d, err := parseDuration(v)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("%s is negative; want how far back to look, such as 24h or 7d", v)
	}
	*f = sinceFlag(d)
	return nil
}

// versionText is the version of this build from the module information
// Go records in the binary (bi, nil when there is none): the module
// version, and the commit and its time when built from a checkout.
func versionText(bi *debug.BuildInfo) string {
	v, rev, at, dirty := "devel", "", "", false
	if bi != nil {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "otpgate " + v
	if rev != "" {
		out += " (commit " + rev[:min(12, len(rev))]
		if at != "" {
			out += " of " + at
		}
		if dirty {
			out += ", modified"
		}
		out += ")"
	}
	return out + " " + runtime.Version()
}

// call runs an admin command: through the running server's socket when
// there is one, else against the store directly.
func call(configPath string, req admin.Request, stdout, stderr io.Writer, finish func(admin.Reply) error) error {
	s, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	rep, err := admin.CallTo(s.adminSocket, req, stdout)
	if errors.Is(err, admin.ErrNoServer) {
		rep, err = callLocal(s, req, stdout)
	}
	if err != nil {
		return err
	}
	out := rep.Output
	if req.Op == "user totp" && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb" {
		// The QR code in colours of its own, which a terminal's theme
		// cannot invert; added here, after the reply was made printable.
		out = admin.ColourQR(out)
	}
	fmt.Fprint(stdout, out)
	if rep.Error != "" {
		if rep.Usage {
			return errUsage{rep.Error}
		}
		return errors.New(rep.Error)
	}
	if finish != nil {
		return finish(rep)
	}
	return nil
}

// readOnly are the commands that only read the store: run where there is
// none, they say so instead of making one.
var readOnly = map[string]bool{"user list": true, "user show": true, "user export": true, "audit": true, "backup": true}

// callLocal runs req in this process, on the store itself, with a long
// output written to stdout as it is made.
func callLocal(s *settings, req admin.Request, stdout io.Writer) (admin.Reply, error) {
	if _, err := os.Stat(s.storePath); errors.Is(err, fs.ErrNotExist) && readOnly[req.Op] {
		from := "the embedded defaults, which keep it in the working directory"
		if s.path != "" {
			from = "store.path in " + s.path
		}
		return admin.Reply{}, fmt.Errorf("no store at %s (from %s), and no server answers on %s; nothing was made.\n"+
			"To reach the server's users, give its configuration, and run as its user: sudo -u otpgate otpgate %s --config /etc/otpgate/otpgate.yaml",
			s.storePath, from, s.adminSocket, req.Op)
	}
	db, key, err := openStore(s, 2*time.Second)
	if errors.Is(err, store.ErrLocked) {
		return admin.Reply{}, fmt.Errorf("%w, and no server answers on %s; is another otpgate command running?", err, s.adminSocket)
	}
	if err != nil {
		return admin.Reply{}, err
	}
	svc := &admin.Service{DB: db, Key: key, Tenants: s.tenants, Issuer: s.issuer, PublicURL: s.web.publicURL}
	if req.Op == "user invite" {
		// No server runs: this process sends the link itself, under the
		// same limits, which live in the store.
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		senders, err := s.cfg.senders(log)
		if err != nil {
			db.Close()
			return admin.Reply{}, err
		}
		svc.Inviter = policy.New(policy.Config{Store: db, Key: key, Tenants: s.tenants, Senders: senders, Log: log})
	}
	rep := svc.DoTo(admin.LocalActor(), req, func(out string) error {
		_, err := io.WriteString(stdout, out)
		return err
	})
	if err := db.Close(); err != nil {
		return rep, fmt.Errorf("close store: %w", err)
	}
	return rep, nil
}

// hashPassword reads one line from r and returns its bcrypt hash.
func hashPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usagef("--password-stdin: standard input held no password; try: echo 'secret' | otpgate user set NAME --password-stdin")
	}
	if len(pw) > 72 {
		return "", usagef("--password-stdin: the password is longer than 72 bytes, the most bcrypt uses")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(hash), nil
}

func writePNG(path, uri string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write qr code: %w", err)
	}
	if err := admin.WritePNG(f, uri, 320); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
