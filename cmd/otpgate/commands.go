package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
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
	s, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	for _, w := range s.deliveryWarnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "configuration OK: %d client(s), %d tenant(s), listening on %s, store %s\n",
		len(s.clients), len(s.tenants), strings.Join(s.listen, " "), s.storePath)
	return nil
}

const userUsage = `otpgate user: manage users
  otpgate user add NAME [--tenant T] [--phone P] [--email E] [--home-ip IP]... [--method totp|sms|email|voice] [--backup-method M] [--password-stdin] [--invite]
  otpgate user set NAME [same flags] [--2fa on|off|tenant] [--clear-home-ips]
  otpgate user show NAME
  otpgate user list
  otpgate user delete NAME
  otpgate user totp NAME [--secret BASE32] [--png FILE] [--confirm CODE]
  otpgate user import FILE.csv      (header: name,tenant,phone,email,method,backup_method,totp_secret,home_ips)
  otpgate user export [--with-secrets]
  otpgate user recovery-codes NAME
  otpgate user reset NAME
  otpgate user unlock NAME
  otpgate user invite NAME [--via sms|email|print] [--valid 72h]`

func cmdUser(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("say what to do with users:\n%s", userUsage)
	}
	sub, args := args[0], args[1:]
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
		png := fs.String("png", "", "also write the QR code to this PNG `FILE`")
		finish = func(rep admin.Reply) error {
			if *png == "" || rep.URI == "" {
				return nil
			}
			return writePNG(*png, rep.URI)
		}
	default:
		return usagef("unknown user command %q:\n%s", sub, userUsage)
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
	var twoFA *string
	var clear *bool
	if isSet {
		twoFA = fs.String("2fa", "", "`on`, off, or tenant (follow the tenant's mode)")
		clear = fs.Bool("clear-home-ips", false, "remove all home IPs (before adding any --home-ip)")
	}
	return func(set map[string]bool) *admin.UserChange {
		ch := &admin.UserChange{}
		ch.Tenant = ptrIf(set["tenant"], *tenant)
		ch.Phone = ptrIf(set["phone"], *phone)
		ch.Email = ptrIf(set["email"], *email)
		ch.Method = ptrIf(set["method"], *method)
		ch.BackupMethod = ptrIf(set["backup-method"], *backup)
		ch.AddHomeIPs = homeIPs
		if isSet {
			ch.TwoFactor = ptrIf(set["2fa"], *twoFA)
			ch.ClearHomeIPs = *clear
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
	fs.DurationVar(&q.Since, "since", 0, "only entries of the last `DURATION`, such as 24h or 30m")
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

// versionText is the version of this build, from the module information
// Go records in the binary.
func versionText() string {
	v, rev, dirty := "devel", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "otpgate " + v
	if rev != "" {
		out += " (" + rev[:min(12, len(rev))]
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
	rep, err := admin.Call(s.adminSocket, req)
	if errors.Is(err, admin.ErrNoServer) {
		rep, err = callLocal(s, req)
	}
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Output)
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

func callLocal(s *settings, req admin.Request) (admin.Reply, error) {
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
	rep := svc.Do(admin.LocalActor(), req)
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
