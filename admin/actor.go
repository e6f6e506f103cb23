package admin

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/otpgate/otpgate/store"
)

// Actor is who gave a command, for its entry in the audit log.
type Actor struct {
	// UID is the user id of the process that gave the command; -1 means
	// it is not known (a signal, or a system without peer credentials).
	UID int
	// Name is the login name of UID; empty when it has none.
	Name string
	// Via is how the command came: "admin socket", "local" (the CLI opened
	// the store itself) or "sighup".
	Via string
}

// LocalActor is the user running this process, for commands it runs
// against a store it opened itself.
func LocalActor() Actor { return actor(os.Getuid(), "local") }

// SignalActor is a reload asked for with SIGHUP, whose sender is not known.
func SignalActor() Actor { return Actor{UID: -1, Via: "sighup"} }

// actor names uid as the system's user database does.
func actor(uid int, via string) Actor {
	a := Actor{UID: uid, Via: via}
	if uid >= 0 {
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			a.Name = u.Username
		}
	}
	return a
}

// String is "uid 1000 (alice)"; empty when the actor is not known.
func (a Actor) String() string {
	switch {
	case a.UID < 0:
		return ""
	case a.Name == "":
		return fmt.Sprintf("uid %d", a.UID)
	}
	return fmt.Sprintf("uid %d (%s)", a.UID, a.Name)
}

// audited are the commands that leave an entry in the audit log: those
// that change something, or let secrets out of the store.
var audited = map[string]bool{
	"user add": true, "user set": true, "user delete": true, "user totp": true,
	"user import": true, "user export": true, "user recovery-codes": true,
	"user reset": true, "user unlock": true, "user invite": true, "reload": true, "backup": true,
}

// record writes the audit entries of a command: one per user it changed
// (the users of an import), or one naming the user it was asked to
// change, or none. err is the command's error.
func (s *Service) record(by Actor, req Request, changed []store.User, err error) error {
	act := store.AdminAct{Op: req.Op, Fields: fieldsOf(req), By: by.String(), Via: by.Via}
	if req.Op == "backup" {
		act.File = req.Path
	}
	e := store.Entry{Time: s.now(), Decision: "admin", Reason: "ok"}
	if err != nil {
		e.Reason, act.Error = "failed", shortError(err)
	}
	var entries []store.Entry
	if req.Op == "user import" && err == nil {
		for _, u := range changed {
			a := act
			a.Fields = userFields(u)
			e.User, e.Tenant, e.Admin = u.Name, u.Tenant, &a
			entries = append(entries, e)
		}
	} else {
		e.User, e.Admin = clip(store.NormalizeName(req.Name)), &act
		entries = append(entries, e)
	}
	return s.DB.Update(func(tx *store.Tx) error {
		for _, e := range entries {
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// fieldsOf names what a command changes, or was asked to.
func fieldsOf(req Request) []string {
	switch req.Op {
	case "user add", "user set":
		return changeFields(req.User)
	case "user totp":
		switch {
		case req.Code != "":
			return []string{"pending_totp", "totp"}
		case req.TOTPSecret != "":
			return []string{"totp"}
		}
		return []string{"pending_totp"}
	case "user recovery-codes":
		return []string{"recovery_codes"}
	case "user reset":
		return []string{"totp", "pending_totp", "recovery_codes", "remembered_ips", "proven_ips", "lockout", "invite"}
	case "user unlock":
		return []string{"lockout"}
	case "user invite":
		return []string{"invite"}
	case "user export":
		if req.WithSecrets {
			return []string{"totp_secret"}
		}
	}
	return nil
}

// changeFields names the fields of a "user add" or "user set".
func changeFields(ch *UserChange) []string {
	if ch == nil {
		return nil
	}
	var f []string
	for _, x := range []struct {
		name string
		set  bool
	}{
		{"tenant", ch.Tenant != nil}, {"phone", ch.Phone != nil}, {"email", ch.Email != nil},
		{"method", ch.Method != nil}, {"backup_method", ch.BackupMethod != nil},
		{"2fa", ch.TwoFactor != nil}, {"home_ips", ch.ClearHomeIPs || len(ch.AddHomeIPs) > 0},
		{"reply", ch.ClearReply || len(ch.AddReply) > 0},
		{"password", ch.PasswordHash != nil},
	} {
		if x.set {
			f = append(f, x.name)
		}
	}
	return f
}

// userFields names the fields an imported user has.
func userFields(u store.User) []string {
	var f []string
	for _, x := range []struct {
		name string
		set  bool
	}{
		{"tenant", u.Tenant != ""}, {"phone", u.Phone != ""}, {"email", u.Email != ""},
		{"method", u.Method != ""}, {"backup_method", u.BackupMethod != ""},
		{"totp", u.TOTP != nil}, {"home_ips", len(u.HomeIPs) > 0},
	} {
		if x.set {
			f = append(f, x.name)
		}
	}
	return f
}

// shortError is an error's text on one line, at most 200 bytes.
func shortError(err error) string {
	lines := slices.DeleteFunc(strings.Split(err.Error(), "\n"), func(l string) bool { return strings.TrimSpace(l) == "" })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	s := strings.Join(lines, " ")
	if len(s) <= 200 {
		return s
	}
	cut := 200
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
