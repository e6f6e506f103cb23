package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/store"
)

// me is how an entry names the user running the test.
func me(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("uid %d (%s)", os.Getuid(), u.Username)
}

// TestAdminActsAudited gives every command that changes something, once
// through a running server's admin socket and once against the store
// directly, and reads back who did what and whether it worked.
func TestAdminActsAudited(t *testing.T) {
	for _, serving := range []bool{true, false} {
		t.Run(map[bool]string{true: "admin socket", false: "local"}[serving], func(t *testing.T) {
			var dir, cfg string
			var srv *server
			if serving {
				srv = startServer(t, cliConfig)
				dir, cfg = srv.dir, srv.config
			} else {
				dir, cfg = writeConfig(t, cliConfig)
			}
			run := func(stdin string, args ...string) (string, int) {
				out, errOut, status := cliRun(t, cfg, stdin, args...)
				return out + errOut, status
			}
			csvFile := filepath.Join(dir, "users.csv")
			os.WriteFile(csvFile, []byte("name,tenant,phone,totp_secret\nbob,acme,+31612345678,\ncarol,acme,,"+testSecret+"\n"), 0o600)
			badCSV := filepath.Join(dir, "bad.csv")
			os.WriteFile(badCSV, []byte("name,tenant\ndan,nowhere\n"), 0o600)
			backup := filepath.Join(dir, "copy.db")

			type want struct {
				user, op, reason string
				fields           []string
			}
			steps := []struct {
				stdin string
				args  []string
				want  []want // the entries it leaves; none for a command that changes nothing
			}{
				{"", []string{"user", "add", "alice", "--tenant", "acme", "--phone", "+31612345678", "--method", "sms"}, []want{{"alice", "user add", "ok", []string{"tenant", "phone", "method"}}}},
				{"", []string{"user", "add", "alice", "--tenant", "acme"}, []want{{"alice", "user add", "failed", []string{"tenant"}}}},
				{"", []string{"user", "set", "alice", "--email", "alice@example.com", "--2fa", "on"}, []want{{"alice", "user set", "ok", []string{"email", "2fa"}}}},
				{"hunter2\n", []string{"user", "set", "alice", "--password-stdin"}, []want{{"alice", "user set", "ok", []string{"password"}}}},
				{"", []string{"user", "set", "zed", "--2fa", "on"}, []want{{"zed", "user set", "failed", []string{"2fa"}}}},
				{"", []string{"user", "show", "alice"}, nil},
				{"", []string{"user", "list"}, nil},
				{"", []string{"user", "totp", "alice", "--secret", testSecret}, []want{{"alice", "user totp", "ok", []string{"totp"}}}},
				{"", []string{"user", "totp", "alice"}, []want{{"alice", "user totp", "ok", []string{"pending_totp"}}}},
				{"", []string{"user", "totp", "alice", "--confirm", "000000"}, []want{{"alice", "user totp", "failed", []string{"pending_totp", "totp"}}}},
				{"", []string{"user", "recovery-codes", "alice"}, []want{{"alice", "user recovery-codes", "ok", []string{"recovery_codes"}}}},
				{"", []string{"user", "unlock", "alice"}, []want{{"alice", "user unlock", "ok", []string{"lockout"}}}},
				{"", []string{"user", "reset", "alice"}, []want{{"alice", "user reset", "ok", []string{"totp", "pending_totp", "recovery_codes", "remembered_ips", "proven_ips", "lockout", "invite"}}}},
				{"", []string{"user", "import", csvFile}, []want{{"bob", "user import", "ok", []string{"tenant", "phone", "method"}}, {"carol", "user import", "ok", []string{"tenant", "method", "totp"}}}},
				{"", []string{"user", "import", badCSV}, []want{{"", "user import", "failed", nil}}},
				{"", []string{"user", "export", "--with-secrets"}, []want{{"", "user export", "ok", []string{"totp_secret"}}}},
				{"", []string{"user", "delete", "bob"}, []want{{"bob", "user delete", "ok", nil}}},
				{"", []string{"backup", backup}, []want{{"", "backup", "ok", nil}}},
				{"", []string{"reload"}, []want{{"", "reload", map[bool]string{true: "ok", false: "failed"}[serving], nil}}},
			}
			var wants []want
			var secrets []string
			for _, st := range steps {
				out, status := run(st.stdin, st.args...)
				if slices.Contains(st.args, "recovery-codes") {
					secrets = append(secrets, strings.Fields(out[strings.Index(out, " 1. "):])[1])
				}
				if wantFail := len(st.want) > 0 && st.want[0].reason == "failed"; wantFail != (status != 0) {
					t.Fatalf("otpgate %s: status %d\n%s", strings.Join(st.args, " "), status, out)
				}
				wants = append(wants, st.want...)
			}

			auditOut, _ := run("", "audit", "--json", "--limit", "0")
			var got []store.Entry
			dec := json.NewDecoder(strings.NewReader(auditOut))
			for dec.More() {
				var e store.Entry
				if err := dec.Decode(&e); err != nil {
					t.Fatal(err)
				}
				if e.Decision == "admin" {
					got = append(got, e)
				}
			}
			if len(got) != len(wants) {
				t.Fatalf("got %d admin entries, want %d:\n%s", len(got), len(wants), auditOut)
			}
			via := map[bool]string{true: "admin socket", false: "local"}[serving]
			for i, w := range wants {
				e := got[i]
				if e.Admin == nil || e.User != w.user || e.Admin.Op != w.op || e.Reason != w.reason || !slices.Equal(e.Admin.Fields, w.fields) ||
					e.Admin.By != me(t) || e.Admin.Via != via || (e.Reason == "failed") != (e.Admin.Error != "") {
					t.Errorf("entry %d: got %+v %+v, want %+v by %s via %s", i, e, e.Admin, w, me(t), via)
				}
			}
			if e := got[4]; e.Admin.Error != "no user zed; add one with: otpgate user add zed" {
				t.Errorf("got error %q", e.Admin.Error)
			}
			if e := got[len(got)-2]; e.Admin.File != backup {
				t.Errorf("backup entry names file %q, want %q", e.Admin.File, backup)
			}
			// Never a secret: the TOTP secret, the password or its hash, a recovery code.
			for _, s := range append(secrets, testSecret, "hunter2", "$2a$") {
				if strings.Contains(auditOut, s) {
					t.Errorf("the audit log holds %q:\n%s", s, auditOut)
				}
			}

			// Beside alice's logins, in time order, readable.
			if serving {
				mustExchange(t, srv.addrs[0], request{user: "alice", password: "pw"})
				run("", "user", "set", "alice", "--method", "email")
			}
			text, _ := run("", "audit", "--user", "alice")
			lines := strings.Split(strings.TrimSpace(squash(text)), "\n")
			wantRows := []string{
				"alice - - admin ok user add tenant,phone,method by " + me(t) + " via " + via,
				"alice - - admin failed user add tenant by " + me(t) + " via " + via + ": user alice exists; change it with: otpgate user set alice ...",
				"alice - - admin ok user set email,2fa by " + me(t) + " via " + via,
			}
			if serving {
				wantRows = append(wantRows, "alice gw - ", "alice - - admin ok user set method by "+me(t)+" via "+via)
			}
			rows := lines[1:4]
			if serving {
				rows = append(rows, lines[len(lines)-2:]...)
			}
			for i, w := range wantRows {
				if _, row, _ := strings.Cut(rows[i], " "); !strings.HasPrefix(row, w) {
					t.Errorf("audit --user alice row %d: got %q, want %q", i, row, w)
				}
			}
			if strings.Contains(text, "bob") {
				t.Errorf("audit --user alice shows bob:\n%s", text)
			}
			if serving {
				srv.waitLog(t, 0, `op="user set" user=zed by="`+me(t)+`" outcome=failed err="no user zed`)
				if log := srv.logText(); strings.Contains(log, `user=zed by="`+me(t)+`" outcome=ok`) {
					t.Errorf("the failed command is logged as done:\n%s", log)
				}
			}
		})
	}
}
