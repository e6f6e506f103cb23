package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// The stores in testdata/store-format* were written by older builds, one
// per store format, each by its make.sh with users of every kind (see its
// makestore_test.go). Every later build must open them and log in with
// them: keep them, and add one written by the build before each raise of
// store.Format.

// upgradeFacts is facts.json: what the older build knew of its store.
type upgradeFacts struct {
	Now      time.Time         `json:"now"`
	Secret   string            `json:"totp_secret"`
	Pending  string            `json:"pending_secret"`
	Recovery []string          `json:"recovery_codes"`
	TomCode  string            `json:"tom_code"`
	Show     map[string]string `json:"show"`
	List     string            `json:"list"`
	Export   string            `json:"export"`
	Audit    string            `json:"audit"`
}

// oldStore copies the store in testdata dir into a temp dir and returns
// the configuration it was written with, pointed at the copy, and its facts.
func oldStore(t *testing.T, dir string) (config string, f upgradeFacts) {
	t.Helper()
	tmp := t.TempDir()
	for _, name := range []string{"otpgate.db", "otpgate.db.key"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "facts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "otpgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(cfg), "{{dir}}", tmp), f
}

func upgradeStores(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("testdata/store-format*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no stores of older builds in testdata: %v", err)
	}
	return dirs
}

// TestUpgrade opens each older build's store with this one, at the clock
// the store was closed at, and finds everything in it: every user as the
// CLI showed them, the audit log, and every kind of login working as it
// did, down to the step of the last code used, the spent recovery code,
// the lockout, the remembered and reconnecting IPs and the send counted.
func TestUpgrade(t *testing.T) {
	for _, dir := range upgradeStores(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			config, f := oldStore(t, dir)
			c := &clock{t: f.Now}
			s := startServerAt(t, config, c.Now)
			checkShownIntact(t, s, f)
			checkLogins(t, s, c, f)
		})
	}
}

// checkShownIntact compares what the CLI shows now with what the older
// build showed at the same time. The export and the list are compared
// column by column, by the columns' names, so that a column added since
// does not count as a loss; in user show each line shown then must still
// be there.
func checkShownIntact(t *testing.T, s *server, f upgradeFacts) {
	sameColumns(t, "user export --with-secrets", csvTable(t, f.Export), csvTable(t, s.cli(t, "user", "export", "--with-secrets")), nil)
	// The older build showed a pending TOTP as "yes"; this one says "pending".
	sameColumns(t, "user list", wordTable(f.List), wordTable(s.cli(t, "user", "list")), map[string]bool{"TOTP": true})
	within := func(what, then, now string) {
		t.Helper()
		have := map[string]bool{}
		for _, l := range strings.Split(squash(now), "\n") {
			have[l] = true
		}
		for _, l := range strings.Split(squash(then), "\n") {
			if !have[l] {
				t.Errorf("%s: the line %q is gone; now:\n%s", what, l, now)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.Show)) {
		within("user show "+name, f.Show[name], s.cli(t, "user", "show", name))
	}
	then, now := jsonLines(t, f.Audit), jsonLines(t, s.cli(t, "audit", "--json", "--limit", "0"))
	if len(now) < len(then) || len(then) == 0 {
		t.Fatalf("audit: got %d entries, want the older build's %d first", len(now), len(then))
	}
	for i, e := range then {
		for k, v := range e {
			if now[i][k] != v {
				t.Errorf("audit entry %d: got %s=%v, want %v", i, k, now[i][k], v)
			}
		}
	}
}

// checkLogins logs in with every kind of user the older build left, at its
// clock, each as it would have been answered there.
func checkLogins(t *testing.T, s *server, c *clock, f upgradeFacts) {
	send := func(user, password, ip, state, from string) *radius.Packet {
		t.Helper()
		return exchangeRetrying(t, s.addrs[0], request{user: user, password: password, callingStation: ip, state: state, from: from})
	}
	login := func(user, ip string) *radius.Packet { t.Helper(); return send(user, "pw", ip, "", "") }
	answer := func(user, ip, text string, ch *radius.Packet) *radius.Packet {
		t.Helper()
		return send(user, text, ip, string(rfc2865.State_Get(ch)), "")
	}
	code := func(secret string) string {
		t.Helper()
		code, err := otp.TOTPCode(secret, c.Now())
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	const (
		totpPrompt = "Enter the code from your authenticator app"
		wrong      = "Wrong code, 2 tries left"
		locked     = "Your account is locked after too many wrong codes. Please try again later or contact your administrator."
	)

	// tom: the code he proved last, in the same step, is still used (the
	// step is kept in the store's list of steps only), and the place he
	// proved it from still lets him reconnect.
	ch := login("tom", "203.0.113.21")
	expect(t, ch, radius.CodeAccessChallenge, totpPrompt)
	expect(t, answer("tom", "203.0.113.21", f.TomCode, ch), radius.CodeAccessChallenge, wrong)
	expect(t, login("tom", "203.0.113.20"), radius.CodeAccessAccept, "Reconnected")

	// sam: remembered IP; one send already counted this hour of the two
	// allowed, so the second is the last.
	expect(t, login("sam", "203.0.113.10"), radius.CodeAccessAccept, "Home IP Allowed!")
	ch = login("sam", "203.0.113.11")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	expect(t, answer("sam", "203.0.113.11", s.lastCode(t, "+31612345678"), ch), radius.CodeAccessAccept, "")
	expect(t, login("sam", "203.0.113.12"), radius.CodeAccessReject, "Too many codes were requested. Please try again later.")

	// emma by e-mail, vic by voice.
	ch = login("emma", "203.0.113.13")
	expect(t, ch, radius.CodeAccessChallenge, "")
	expect(t, answer("emma", "203.0.113.13", s.lastCode(t, "emma@example.com"), ch), radius.CodeAccessAccept, "")
	ch = login("vic", "203.0.113.14")
	expect(t, ch, radius.CodeAccessChallenge, "")
	expect(t, answer("vic", "203.0.113.14", voiceCode(t, s, "+31612345679"), ch), radius.CodeAccessAccept, "")

	// hal: an address and a network at home.
	expect(t, login("hal", "198.51.100.7"), radius.CodeAccessAccept, "Home IP Allowed!")
	expect(t, login("hal", "198.51.100.100"), radius.CodeAccessAccept, "Home IP Allowed!")
	expect(t, login("hal", "198.51.100.200"), radius.CodeAccessChallenge, totpPrompt)

	// pat: the pending secret is linked by its first code.
	ch = login("pat", "203.0.113.15")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app to finish linking it")
	expect(t, answer("pat", "203.0.113.15", code(f.Pending), ch), radius.CodeAccessAccept, "Your authenticator app is linked.")

	// rec: the spent recovery code stays spent, the next one works.
	ch = login("rec", "203.0.113.31")
	ch = answer("rec", "203.0.113.31", f.Recovery[0], ch)
	expect(t, ch, radius.CodeAccessChallenge, wrong)
	expect(t, answer("rec", "203.0.113.31", f.Recovery[1], ch), radius.CodeAccessAccept,
		"Recovery code accepted. 8 left; ask your administrator for new ones.")

	// lou: locked, even from the office, until unlocked.
	expect(t, login("lou", "192.0.2.10"), radius.CodeAccessReject, locked)
	s.cli(t, "user", "unlock", "lou")
	expect(t, login("lou", "192.0.2.10"), radius.CodeAccessAccept, "HQ IP Allowed!")

	// lola: her local password at the vpn client.
	expect(t, send("lola", "hunter2", "192.0.2.5", "", "127.0.0.2"), radius.CodeAccessAccept, "HQ IP Allowed!")
	expect(t, send("lola", "hunter3", "192.0.2.5", "", "127.0.0.2"), radius.CodeAccessReject, "Wrong user name or password")

	// otto: no second factor.
	expect(t, login("otto", "203.0.113.78"), radius.CodeAccessAccept, "")

	// tina: the second tenant's reconnect window holds her proved IP.
	expect(t, login("tina", "203.0.113.40"), radius.CodeAccessAccept, "Reconnected")
	expect(t, login("tina", "203.0.113.41"), radius.CodeAccessChallenge, totpPrompt)

	// tom again, a step later: a new code is accepted.
	c.Advance(30 * time.Second)
	ch = login("tom", "203.0.113.22")
	expect(t, answer("tom", "203.0.113.22", code(f.Secret), ch), radius.CodeAccessAccept, "")
}

// exchangeRetrying sends req as a gateway does: the same packet from the
// same port again while no answer comes, which the server answers from its
// cache of answers. Checking a bcrypt password under the race detector,
// on a busy machine, can take several waits (TestAppendMode meets the
// same); a gateway would retry as long.
func exchangeRetrying(t *testing.T, addr string, req request) *radius.Packet {
	t.Helper()
	raw := encodeRequest(t, req)
	var laddr *net.UDPAddr
	if req.from != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(req.from)}
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const tries = 20 // of 1.5 s each
	for range tries {
		p, _, err := roundTrip(t, conn, raw, req.secret)
		if err == nil {
			return p
		}
	}
	t.Fatalf("%s: no answer to %d tries", req.user, tries)
	return nil
}

// voiceCode is the code in the newest voice call to dest, which the
// console writes spelled out twice ("1 2 3 4 5 6. Once more: 1 2 3 4 5 6.").
func voiceCode(t *testing.T, s *server, dest string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.logs) - 1; i >= 0; i-- {
		l := s.logs[i]
		if strings.Contains(l, "console delivery") && field(l, "to") == dest && field(l, "channel") == "voice" {
			digits := regexp.MustCompile(`\d`).FindAllString(field(l, "text"), -1)
			return strings.Join(digits[:len(digits)/2], "")
		}
	}
	t.Fatalf("no voice call to %s in the log", dest)
	return ""
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decode %q: %v", s, err)
		}
		out = append(out, m)
	}
	return out
}

// TestUpgradeNewerFormatRefused: a store written by a newer build, in a
// format this one does not know, is refused by serve and by the CLI with
// one line naming the file and both formats, exit status 1, and is left
// as it was.
func TestUpgradeNewerFormatRefused(t *testing.T) {
	config, _ := oldStore(t, upgradeStores(t)[0])
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "otpgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(config+"\nhttp: {listen: \"127.0.0.1:0\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := regexp.MustCompile(`path: "([^"]+)"`).FindStringSubmatch(config)[1]
	newer := store.Format + 1
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.PutMeta("format", []byte(strconv.Itoa(newer))) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	want := "otpgate: open store " + dbPath + ": made by a newer otpgate (format " + strconv.Itoa(newer) +
		"); this binary reads up to format " + strconv.Itoa(store.Format) + ": upgrade otpgate or restore a backup\n"

	for _, args := range [][]string{
		{"serve"},
		{"user", "list"},
		{"user", "show", "tom"},
		{"audit"},
		{"backup", filepath.Join(dir, "copy.db")},
	} {
		t.Run(strings.Join(args[:min(2, len(args))], " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			// Bounded, so that a serve which does not refuse stops and fails.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := runAt(ctx, time.Now, append(args, "--config", cfgPath), strings.NewReader(""), &out, &errOut)
			status := exitCode(err, &errOut)
			if status != 1 {
				t.Errorf("got exit status %d, want 1", status)
			}
			// serve may log warnings about the configuration first; the
			// refusal is its last line, and the only one about the store.
			lines := strings.SplitAfter(errOut.String(), "\n")
			if last := lines[len(lines)-2]; last != want {
				t.Errorf("got last line\n%q\nwant\n%q", last, want)
			}
			if n := strings.Count(errOut.String(), "open store "); n != 1 || strings.Contains(errOut.String(), "goroutine") || out.Len() != 0 {
				t.Errorf("got output %q and errors\n%s\nwant only the one line", out.String(), errOut.String())
			}
		})
	}
	after, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the refused store was changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "copy.db")); !os.IsNotExist(err) {
		t.Errorf("backup of a refused store: got %v, want no copy", err)
	}
}

// table is a header and rows of cells.
type table struct {
	header []string
	rows   [][]string
}

func csvTable(t *testing.T, text string) table {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("read CSV %q: %v", text, err)
	}
	return table{recs[0], recs[1:]}
}

// wordTable reads a table printed with columns of words.
func wordTable(text string) table {
	var tb table
	for i, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if i == 0 {
			tb.header = strings.Fields(l)
			continue
		}
		tb.rows = append(tb.rows, strings.Fields(l))
	}
	return tb
}

// sameColumns checks that every row of then is in now, in the same order,
// with the same value in every column then had (but those in skip).
func sameColumns(t *testing.T, what string, then, now table, skip map[string]bool) {
	t.Helper()
	if len(now.rows) != len(then.rows) {
		t.Fatalf("%s: got %d rows, want %d:\n%q", what, len(now.rows), len(then.rows), now.rows)
	}
	for _, name := range then.header {
		i, j := slices.Index(then.header, name), slices.Index(now.header, name)
		if j < 0 {
			t.Errorf("%s: column %s is gone; now %q", what, name, now.header)
			continue
		}
		if skip[name] {
			continue
		}
		for r := range then.rows {
			if i >= len(then.rows[r]) || j >= len(now.rows[r]) || then.rows[r][i] != now.rows[r][j] {
				t.Errorf("%s: row %d column %s: got %q, want %q", what, r+1, name, now.rows[r], then.rows[r])
			}
		}
	}
}
