package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/store"
)

// TestBackupWhileServing copies the store through the running server's
// admin socket and checks the copy is a sound store with the users in it.
func TestBackupWhileServing(t *testing.T) {
	s := startServer(t, e2eConfig)
	s.cli(t, "user", "add", "bea", "--tenant", "acme", "--phone", "+31612345678")
	s.cli(t, "user", "totp", "bea", "--secret", testSecret)
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	out := s.cli(t, "backup", copyPath)
	if !strings.Contains(out, "backed up the store to "+copyPath) {
		t.Fatalf("got %q", out)
	}
	// The server logs the command as it answers: wait for the line.
	s.waitLog(t, 0, `op=backup`)
	db, err := store.Open(copyPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Errorf("the copy fails bbolt's check: %v", err)
	}
	err = db.View(func(tx *store.Tx) error {
		u, err := tx.User("bea")
		if err == nil && (u.TOTP == nil || u.Phone != "+31612345678") {
			t.Errorf("bea in the copy: %+v", u)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.cliErr("backup"); err == nil || !strings.Contains(err.Error(), "backup needs one file name") {
		t.Errorf("backup without a file: got %v", err)
	}
}

func TestAuditSince(t *testing.T) {
	c := newClock()
	s := startServerAt(t, strings.Replace(e2eConfig, "tenants:", "audit: {keep: 48h}\ntenants:", 1), c.Now)
	s.cli(t, "user", "add", "abe", "--tenant", "acme")
	login := func() {
		t.Helper()
		expect(t, mustExchange(t, s.addrs[0], request{user: "abe", password: "pw", callingStation: "192.0.2.9"}), radius.CodeAccessReject, "")
	}
	login()
	c.Advance(3 * time.Hour)
	login()
	lines := func(args ...string) int {
		out := strings.TrimSpace(s.cli(t, append([]string{"audit", "--json", "--user", "abe", "--limit", "0"}, args...)...))
		if out == "" {
			return 0
		}
		for _, l := range strings.Split(out, "\n") {
			var e store.Entry
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("audit line %q: %v", l, err)
			}
		}
		return len(strings.Split(out, "\n"))
	}
	if n := lines(); n != 3 {
		t.Errorf("all: got %d entries, want 3 (user add and two logins)", n)
	}
	if n := lines("--since", "1h"); n != 1 {
		t.Errorf("--since 1h: got %d entries, want 1", n)
	}
	if _, err := s.cliErr("audit", "--since", "soon"); err == nil {
		t.Errorf("--since soon: got no error")
	}
}

func TestVersion(t *testing.T) {
	out, _, status := cliRun(t, "", "", "version")
	if status != 0 || !strings.HasPrefix(out, "otpgate ") || !strings.Contains(out, "go1.") {
		t.Errorf("got %d %q", status, out)
	}
}
