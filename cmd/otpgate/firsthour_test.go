package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
)

// step is one CLI command and what it must print (in stdout and stderr,
// runs of spaces squashed) and exit with.
type step struct {
	args   []string
	status int
	want   []string
	not    []string // must not appear
}

func runSteps(t *testing.T, cfg string, steps []step) {
	t.Helper()
	for _, st := range steps {
		out, errOut, status := cliRun(t, cfg, "", st.args...)
		got := squash(out + errOut)
		ok := status == st.status
		for _, w := range st.want {
			ok = ok && strings.Contains(got, w)
		}
		for _, n := range st.not {
			ok = ok && !strings.Contains(got, n)
		}
		if !ok {
			t.Errorf("otpgate %s: got status %d and\n%s\nwant status %d with %q and without %q", strings.Join(st.args, " "), status, got, st.status, st.want, st.not)
		}
	}
}

// TestUsersThatCannotLogIn: what cannot work is refused naming the
// tenant's rule, and what will not work yet is said, when the admin adds
// or changes a user, not at the user's first login.
func TestUsersThatCannotLogIn(t *testing.T) {
	_, cfg := writeConfig(t, cliConfig)
	runSteps(t, cfg, []step{
		// sms without a phone, email where the tenant has no email.
		{args: []string{"user", "add", "ivan", "--tenant", "acme", "--method", "sms"}, status: 2, want: []string{"--method sms needs a phone number; give --phone too"}},
		{args: []string{"user", "show", "ivan"}, status: 1, want: []string{"no user ivan"}},
		{args: []string{"user", "add", "eve", "--tenant", "other", "--method", "email", "--email", "eve@example.com"}, status: 2, want: []string{"--method email: tenant other allows totp (its methods:)"}},
		// A number the tenant will never send to.
		{args: []string{"user", "add", "hal", "--tenant", "nl", "--phone", "+44 7700 900123"}, status: 2, want: []string{"--phone +447700900123: tenant nl sends codes only to country code 31 (its limits.countries), not to +44"}},
		// Taking away the phone of an SMS user.
		{args: []string{"user", "add", "alice", "--tenant", "acme", "--phone", "+31612345678"}, status: 0, want: []string{"added user alice"}, not: []string{"warning"}},
		{args: []string{"user", "set", "alice", "--phone", ""}, status: 2, want: []string{"--phone is empty, but --method sms needs one"}},
		{args: []string{"user", "set", "alice", "--tenant", "other"}, status: 2, want: []string{"tenant other allows totp"}},
		{args: []string{"user", "set", "alice", "--phone", "", "--method", "email", "--email", "alice@example.com"}, status: 0, want: []string{"updated user alice"}},
		{args: []string{"user", "show", "alice"}, status: 0, want: []string{"method: email", "phone: none", "can log in: yes"}},
		// A phone and a backup of sms: not sms,sms.
		{args: []string{"user", "add", "kim", "--tenant", "acme", "--phone", "+31612345670", "--backup-method", "sms"}, status: 0, want: []string{"note: sms is kim's only method, so it is the primary one and there is no backup"}},
		{args: []string{"user", "show", "kim"}, status: 0, want: []string{"method: sms", "backup method: none"}},
		// An e-mail address in a tenant that sends no e-mail: no method.
		{args: []string{"user", "add", "otto", "--tenant", "other", "--email", "otto@example.com"}, status: 0, want: []string{"warning: otto cannot log in: no second factor; tenant other requires a second factor"}},
		// No method at all: warned, and show and list say so.
		{args: []string{"user", "add", "bob", "--tenant", "acme"}, status: 0, want: []string{"added user bob", "warning: bob cannot log in: no second factor", "otpgate user totp bob"}},
		{args: []string{"user", "show", "bob"}, status: 0, want: []string{"can log in: NO: no second factor"}},
		{args: []string{"user", "list"}, status: 0, want: []string{"bob acme - tenant no - - NO: no second factor"}},
		// Recovery codes do not help a user who cannot be challenged.
		{args: []string{"user", "recovery-codes", "bob"}, status: 0},
		{args: []string{"user", "show", "bob"}, status: 0, want: []string{"their recovery codes cannot help"}},
		// A pending TOTP only: not yet, and the list says pending, not yes.
		{args: []string{"user", "totp", "bob"}, status: 0},
		{args: []string{"user", "show", "bob"}, status: 0, want: []string{"can log in: yes; their authenticator app is still being linked"}},
		{args: []string{"user", "list"}, status: 0, want: []string{"bob acme - tenant pending - - yes"}},
		// A method with nothing behind it from an older record, then fixed.
		{args: []string{"user", "set", "bob", "--method", "totp"}, status: 0, want: []string{"updated user bob"}},
		{args: []string{"user", "set", "bob", "--method", "totp"}, status: 0, want: []string{"user bob already had these settings; nothing changed"}},
	})
}

// TestExportImportRoundTrip: what export writes, import takes back, with
// and without secrets, into the same store (with --update) or another,
// and every field comes back as it was.
func TestExportImportRoundTrip(t *testing.T) {
	dir, cfg := writeConfig(t, cliConfig)
	must := func(args ...string) string {
		t.Helper()
		out, errOut, status := cliRun(t, cfg, "", args...)
		if status != 0 {
			t.Fatalf("otpgate %s: status %d\n%s%s", strings.Join(args, " "), status, out, errOut)
		}
		return out
	}
	must("user", "add", "ann", "--tenant", "acme", "--phone", "+31612345678", "--email", "ann@example.com", "--method", "sms", "--backup-method", "email", "--home-ip", "198.51.100.7", "--home-ip", "203.0.113.0/29")
	must("user", "set", "ann", "--2fa", "off")
	must("user", "add", "ben", "--tenant", "acme", "--phone", "+31612345679")
	must("user", "totp", "ben", "--secret", testSecret) // totp, backup sms
	must("user", "add", "cat", "--tenant", "other")
	must("user", "set", "cat", "--2fa", "on")
	must("user", "add", "kim", "--tenant", "acme", "--phone", "+31612345670", "--backup-method", "sms") // once exported as sms,sms
	must("user", "add", "nora", "--tenant", "nl", "--phone", "0687654321", "--method", "voice", "--backup-method", "sms")
	must("user", "add", "=cmd", "--tenant", "acme", "--email", "-x@example.com")

	plain := must("user", "export")
	secrets := must("user", "export", "--with-secrets")
	for _, want := range []string{
		"name,tenant,phone,email,method,backup_method,totp_secret,home_ips,2fa",
		"ann,acme,+31612345678,ann@example.com,sms,email,,198.51.100.7 203.0.113.0/29,off",
		"ben,acme,+31612345679,,totp,sms,,,",
		"cat,other,,,,,,,on",
		"kim,acme,+31612345670,,sms,,,,",
		"nora,nl,+31687654321,,voice,sms,,,",
		"'=cmd,acme,,'-x@example.com,email,,,,",
	} {
		if !strings.Contains(plain, want+"\n") {
			t.Errorf("export lacks %q:\n%s", want, plain)
		}
	}
	if !strings.Contains(secrets, "ben,acme,+31612345679,,totp,sms,"+testSecret+",,\n") {
		t.Errorf("export --with-secrets lacks ben's secret:\n%s", secrets)
	}
	file := filepath.Join(dir, "users.csv")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Into the same store: refused without --update, naming every user.
	write(plain)
	_, errOut, status := cliRun(t, cfg, "", "user", "import", file)
	if status != 2 || !strings.Contains(errOut, "line 3: user ann exists; give --update") || !strings.Contains(errOut, "line 2: user =cmd exists") {
		t.Errorf("import of existing users: got %d\n%s", status, errOut)
	}
	// With --update: nothing changes, and ben keeps his app though the
	// file has no secrets.
	if out := must("user", "import", "--update", file); !strings.Contains(out, "imported 6 user(s): 0 added, 6 updated") {
		t.Errorf("import --update: got %q", out)
	}
	if again := must("user", "export", "--with-secrets"); again != secrets {
		t.Errorf("export after import --update of its own export:\n%s\nwant\n%s", again, secrets)
	}
	if show := squash(must("user", "show", "ann")); !strings.Contains(show, "home ips: 198.51.100.7 203.0.113.0/29") || !strings.Contains(show, "2fa: off") {
		t.Errorf("ann after the round trip:\n%s", show)
	}

	// Into another store, with secrets: the same users, the same export.
	_, cfg2 := writeConfig(t, cliConfig)
	write(secrets)
	if out, errOut, status := cliRun(t, cfg2, "", "user", "import", file); status != 0 || !strings.Contains(out, "imported 6 user(s)") {
		t.Fatalf("import into a new store: got %d %q %q", status, out, errOut)
	}
	if out, _, _ := cliRun(t, cfg2, "", "user", "export", "--with-secrets"); out != secrets {
		t.Errorf("export of the new store:\n%s\nwant\n%s", out, secrets)
	}
	if out, _, _ := cliRun(t, cfg2, "", "user", "show", "ben"); !strings.Contains(squash(out), "totp: active") {
		t.Errorf("ben in the new store:\n%s", out)
	}

	// --update changes what the file says; a file with mistakes changes
	// nothing and names every one of them, by column.
	write("name,phone,method,home_ips,2fa\n" +
		"ann,+31612345600,,,\n" +
		"ben,12,,,\n" +
		"cat,,pigeon,,\n" +
		"kim,,,not-an-ip,maybe\n" +
		"nora,+447700900123,,,\n" +
		"ann,,,,\n")
	_, errOut, status = cliRun(t, cfg, "", "user", "import", "--update", file)
	for _, want := range []string{
		`line 3: phone: "12"`,
		`line 4: method "pigeon": want one of totp, sms, email, voice`,
		`line 5: home_ips "not-an-ip"`,
		`line 5: 2fa "maybe": want on, off or tenant`,
		"line 6: phone +447700900123: tenant nl sends codes only to country code 31",
		"line 7: ann is also on line 2",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("bad --update: want %q in\n%s", want, errOut)
		}
	}
	if status != 2 || strings.Contains(errOut, "--") {
		t.Errorf("bad --update: got status %d, and errors must name columns, not flags:\n%s", status, errOut)
	}
	write("name,phone,home_ips\nann,+31612345600,\n")
	must("user", "import", "--update", file)
	if show := squash(must("user", "show", "ann")); !strings.Contains(show, "phone: +31612345600") || !strings.Contains(show, "home ips: none") ||
		!strings.Contains(show, "email: ann@example.com") || !strings.Contains(show, "2fa: off") {
		t.Errorf("ann after --update of phone and home_ips only:\n%s", show)
	}
}

// TestCheckConfigAllAtOnce: one run of check-config names every problem
// in the file and what serve would refuse beyond it, each by its key and
// with the fix.
func TestCheckConfigAllAtOnce(t *testing.T) {
	dir := t.TempDir()
	// A port in use now: a warning, since it may be free at start.
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	os.WriteFile(filepath.Join(dir, "gw.secret"), []byte("# the gateway's secret\nreally-long-shared-secret\n"), 0o600)
	cfg := filepath.Join(dir, "otpgate.yaml")
	os.WriteFile(cfg, []byte(`
tenant: x
radius: {listen: ["`+busy.LocalAddr().String()+`"], lisen: x}
http: {listen: ""}
store: {path: `+dir+`/missing/otpgate.db}
clients:
  - {name: gw, address: 10.0.0.300, secret_file: gw.secret, tenant: t}
  - {name: nps, address: 192.0.2.7, secret: short-secret, tenant: t}
tenants:
  - {name: t, ofice_networks: [10.0.0.0/8], code_ttl: "3 minutes", reconnect_window: 180, audit: x}
`), 0o600)
	out, errOut, status := cliRun(t, cfg, "", "check-config")
	for _, want := range []string{
		"tenant: unknown key; did you mean tenants?",
		"radius.lisen: unknown key; did you mean listen?",
		"tenants[0].ofice_networks: unknown key; did you mean office_networks?",
		"tenants[0].audit: unknown key; the keys here are ",
		`tenants[0].code_ttl: "3 minutes" is not a duration: write a number and a unit, such as 180s, 3m, 1h30m or 7d (units: ms, s, m, h, d)`,
		"tenants[0].reconnect_window: 180 has no unit: a number needs a unit, such as 180s",
		`clients[0].address: "10.0.0.300" is not an address`,
		"clients[0].secret_file: " + filepath.Join(dir, "gw.secret") + " has 2 lines that are not empty; it must hold only the secret, on its first line (no comments)",
		"store.path: the directory " + filepath.Join(dir, "missing") + " does not exist",
		"warning: radius.listen[0]: cannot listen on " + busy.LocalAddr().String() + " now (bind: address already in use)",
		"warning: clients[1] (nps): the shared secret is 12 characters; use 16 or more (RFC 2865 §3)",
	} {
		if !strings.Contains(out+errOut, want) {
			t.Errorf("check-config lacks %q:\n%s%s", want, out, errOut)
		}
	}
	if status != 1 {
		t.Errorf("check-config: got status %d, want 1", status)
	}
	if strings.Contains(out, "warning: clients[0]") {
		t.Errorf("a long secret was warned about:\n%s", out)
	}

	// A secret file's first line is the secret; a CRLF file too.
	os.WriteFile(filepath.Join(dir, "gw.secret"), []byte("really-long-shared-secret\r\n\n"), 0o600)
	os.WriteFile(cfg, []byte(`
store: {path: `+dir+`/otpgate.db}
radius: {listen: ["127.0.0.1:0"]}
http: {listen: ""}
clients: [{name: gw, address: 10.0.0.1, secret_file: gw.secret, tenant: t}]
tenants: [{name: t, code_ttl: 0, audit_keep: 1}]
`), 0o600)
	out, errOut, status = cliRun(t, cfg, "", "check-config")
	if status != 1 || !strings.Contains(errOut, "tenants[0].audit_keep: unknown key") {
		t.Errorf("got %d:\n%s%s", status, out, errOut)
	}
	os.WriteFile(cfg, []byte(`
store: {path: `+dir+`/otpgate.db}
radius: {listen: ["127.0.0.1:0"]}
http: {listen: ""}
clients: [{name: gw, address: 10.0.0.1, secret_file: gw.secret, tenant: t}]
tenants: [{name: t, code_ttl: 0, audit: {keep: 90d}}]
audit: {keep: 90d}
`), 0o600)
	s, err := loadConfig(cfg)
	if err == nil {
		t.Fatalf("loadConfig took tenants[0].audit")
	}
	os.WriteFile(cfg, []byte(`
store: {path: `+dir+`/otpgate.db}
radius: {listen: ["127.0.0.1:0"]}
http: {listen: ""}
clients: [{name: gw, address: 10.0.0.1, secret_file: gw.secret, tenant: t}]
tenants: [{name: t, code_ttl: 0}]
audit: {keep: 90d}
`), 0o600)
	if s, err = loadConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if string(s.clients[0].Secret) != "really-long-shared-secret" || s.auditKeep != 90*24*time.Hour || s.tenants[0].CodeTTL != 3*time.Minute {
		t.Errorf("got secret %q, audit.keep %s, code_ttl %s", s.clients[0].Secret, s.auditKeep, s.tenants[0].CodeTTL)
	}
}

// TestCLISameEverywhere: every command answers --help, -h and help
// COMMAND with its own usage on standard output and exit status 0;
// --config goes before or after the command; mistakes say what to type.
func TestCLISameEverywhere(t *testing.T) {
	dir, cfg := writeConfig(t, cliConfig)
	cli := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
		return out.String(), errOut.String(), exitCode(err, &errOut)
	}
	for _, cmd := range [][]string{
		{"serve"}, {"check-config"}, {"user", "add"}, {"user", "set"}, {"user", "show"}, {"user", "list"}, {"user", "delete"},
		{"user", "totp"}, {"user", "import"}, {"user", "export"}, {"user", "recovery-codes"}, {"user", "reset"}, {"user", "unlock"},
		{"audit"}, {"reload"}, {"backup"}, {"version"},
	} {
		name := strings.Join(cmd, " ")
		for _, args := range [][]string{append(slices.Clone(cmd), "--help"), append(slices.Clone(cmd), "-h"), append([]string{"help"}, cmd...)} {
			out, errOut, status := cli(args...)
			if status != 0 || errOut != "" || !strings.Contains(out, "Usage:\n  otpgate "+name) || strings.Contains(out, "otpgate: RADIUS") {
				t.Errorf("otpgate %s: got status %d, stdout\n%s\nstderr %q; want its own usage and 0", strings.Join(args, " "), status, out, errOut)
			}
		}
	}
	if out, _, status := cli("user", "add", "--help"); status != 0 || !strings.Contains(out, "-phone NUMBER") {
		t.Errorf("user add --help lists no flags: %d\n%s", status, out)
	}
	for _, args := range [][]string{{"user", "--help"}, {"help", "user"}, {"user", "-h"}} {
		if out, errOut, status := cli(args...); status != 0 || !strings.Contains(out, "otpgate user add NAME") || errOut != "" {
			t.Errorf("otpgate %s: got %d\n%s%s", strings.Join(args, " "), status, out, errOut)
		}
	}
	// --config before the command.
	if out, errOut, status := cli("--config", cfg, "user", "add", "zoe", "--tenant", "acme", "--email", "zoe@example.com"); status != 0 || !strings.Contains(out, "added user zoe") {
		t.Errorf("--config before the command: got %d\n%s%s", status, out, errOut)
	}
	if out, _, status := cli("--config="+cfg, "user", "list"); status != 0 || !strings.Contains(out, "zoe") {
		t.Errorf("--config= before the command: got %d\n%s", status, out)
	}
	runSteps(t, cfg, []step{
		{args: []string{"check-config", cfg}, status: 2, want: []string{"otpgate check-config takes the file as a flag: otpgate check-config --config " + cfg}},
		{args: []string{"audit", "--since", "1d"}, status: 0, want: []string{"user add", "zoe"}},
		{args: []string{"audit", "--since", "7d", "--user", "zoe"}, status: 0, want: []string{"zoe"}},
		{args: []string{"audit", "--since", "1 day"}, status: 2, want: []string{`"1 day" is not a duration: write a number and a unit, such as 180s, 3m, 1h30m or 7d`}},
		{args: []string{"user", "show", "nosuch"}, status: 1, want: []string{"no user nosuch"}},
		{args: []string{"user", "set", "zoe"}, status: 2, want: []string{"nothing to change: give what to change, such as otpgate user set zoe --phone"}},
		{args: []string{"user", "set", "zoe", "--email", "zoe@example.com"}, status: 0, want: []string{"user zoe already had these settings; nothing changed"}},
		{args: []string{"user", "totp", "zoe", "--confirm", "abc"}, status: 2, want: []string{`--confirm "abc": a code is the 6 digits the authenticator app shows`}},
		{args: []string{"user", "totp", "zoe", "--secret", "JBSWY3DPEHPK3PXP"}, status: 2, want: []string{"--secret: the secret is 80 bits; a new one needs at least 128 (RFC 4226 §4)", "--allow-short-secret"}},
		{args: []string{"user", "totp", "zoe", "--secret", "JBSWY3DPEHPK3PXP", "--allow-short-secret"}, status: 0, want: []string{"TOTP secret imported for zoe"}},
		{args: []string{"user", "list"}, status: 0, want: []string{"zoe acme totp,email tenant yes"}},
		{args: []string{"user", "add", strings.Repeat("n", 10000), "--tenant", "acme"}, status: 2, want: []string{"at most 253 bytes", "(10000 bytes)"}},
		{args: []string{"user", "show", strings.Repeat("n", 10000)}, status: 1, want: []string{"(10000 bytes)"}},
	})
	if out, errOut, _ := cliRun(t, cfg, "", "user", "add", strings.Repeat("n", 10000), "--tenant", "acme"); len(out+errOut) > 1000 {
		t.Errorf("a 10000-byte name is echoed whole: %d bytes of output", len(out+errOut))
	}
	if out, _, _ := cliRun(t, cfg, "", "audit"); len(out) > 5000 {
		t.Errorf("a 10000-byte name reached the audit log whole: %d bytes", len(out))
	}

	// Reading where there is no store makes none.
	empty := t.TempDir()
	noStore := filepath.Join(empty, "otpgate.yaml")
	os.WriteFile(noStore, []byte(strings.ReplaceAll(cliConfig, "{{dir}}", empty)), 0o600)
	for _, args := range [][]string{{"user", "list"}, {"user", "show", "alice"}, {"audit"}, {"user", "export"}} {
		_, errOut, status := cliRun(t, noStore, "", args...)
		if status != 1 || !strings.Contains(errOut, "no store at "+filepath.Join(empty, "otpgate.db")+" (from store.path in "+noStore+")") || !strings.Contains(errOut, "--config /etc/otpgate/otpgate.yaml") {
			t.Errorf("otpgate %s without a store: got %d %q", strings.Join(args, " "), status, errOut)
		}
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 1 {
		t.Errorf("reading commands left files behind: %v", entries)
	}
	_ = dir
}

func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/otpgate/otpgate", Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got, want := versionText(bi), "otpgate v1.2.3 (commit 0123456789ab of 2026-11-30T10:00:00Z, modified) "+runtime.Version(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := versionText(nil); got != "otpgate devel "+runtime.Version() {
		t.Errorf("got %q without build info", got)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "otpgate ") {
		t.Errorf("otpgate version: %v %q", err, out.String())
	}
}

// TestLogsOperatorsRead: no warning for channels only a tenant in mode off
// allows; decision lines without empty fields; reading over the admin
// socket is not logged at info.
func TestLogsOperatorsRead(t *testing.T) {
	config := `
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: gw, address: 127.0.0.1/32, secret: testing123, tenant: free}
tenants:
  - {name: acme, methods: [totp, sms]}
  - {name: free, mode: "off", methods: [voice, email]}
`
	_, cfg := writeConfig(t, config)
	out, errOut, status := cliRun(t, cfg, "", "check-config")
	if status != 0 || !strings.Contains(out, "warning: tenant acme allows sms, but delivery.sms names no provider") ||
		strings.Contains(out, "voice") || strings.Contains(out, "delivery.email") {
		t.Errorf("check-config: got %d\n%s%s\nwant a warning for acme's sms only", status, out, errOut)
	}

	s := startServer(t, config)
	if strings.Contains(s.logText(), "voice") {
		t.Errorf("serve warned about a channel only a tenant in mode off allows:\n%s", s.logText())
	}
	s.cli(t, "user", "add", "ann", "--tenant", "free")
	resp, _, err := exchange(t, s.addrs[0], request{user: "ann", password: "x"})
	if err != nil || codeName(resp) != "Access-Accept" {
		t.Fatalf("got %v %v", resp, err)
	}
	line := s.waitLog(t, 0, `msg=decision user=ann`)
	if strings.Contains(line, `=""`) || !strings.Contains(line, "reason=tenant_2fa_off") {
		t.Errorf("decision line with empty fields: %s", line)
	}
	n := s.logLen()
	s.cli(t, "user", "show", "ann")
	s.cli(t, "user", "list")
	s.cli(t, "audit")
	s.cli(t, "user", "unlock", "ann")
	s.waitLog(t, n, `op="user unlock"`)
	if logs := s.logText(); strings.Contains(logs, `op="user show"`) || strings.Contains(logs, `op="user list"`) || strings.Contains(logs, "op=audit") {
		t.Errorf("reading commands logged at info:\n%s", logs)
	}
}

// TestExampleNamesEveryMessage: config.example.yaml's messages list every
// key the code takes, so an admin sees all they can change.
func TestExampleNamesEveryMessage(t *testing.T) {
	b, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range policy.MessageKeys() {
		if !strings.Contains(string(b), "\n      "+k+": ") {
			t.Errorf("config.example.yaml's messages lack %s", k)
		}
	}
}
