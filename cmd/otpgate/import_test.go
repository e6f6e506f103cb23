package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportExport(t *testing.T) {
	dir, cfg := writeConfig(t, cliConfig)
	file := filepath.Join(dir, "users.csv")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A bad row names its line, and nothing is imported.
	write("name,tenant,phone,email,method,backup_method,totp_secret,home_ips\n" +
		"ann,acme,+31612345678,ann@example.com,sms,email,,198.51.100.7\n" +
		"ben,acme,12,,,,,\n" +
		"cat,nowhere,,,,,,\n")
	_, errOut, status := cliRun(t, cfg, "", "user", "import", file)
	if status != 2 || !strings.Contains(errOut, "line 3: phone:") || !strings.Contains(errOut, `line 4: tenant "nowhere"`) {
		t.Fatalf("got %d:\n%s", status, errOut)
	}
	if out, _, _ := cliRun(t, cfg, "", "user", "list"); strings.Contains(out, "ann") {
		t.Fatalf("a failed import left users behind:\n%s", out)
	}

	write("name,tenant,phone,email,method,backup_method,totp_secret,home_ips\n" +
		"ann,acme,+31612345678,ann@example.com,sms,email,,198.51.100.7;198.51.100.8\n" +
		"Ben,acme,,,,,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,\n")
	out, errOut, status := cliRun(t, cfg, "", "user", "import", file)
	if status != 0 || !strings.Contains(out, "imported 2 user(s)") {
		t.Fatalf("got %d %q %q", status, out, errOut)
	}
	show, _, _ := cliRun(t, cfg, "", "user", "show", "ben")
	if s := squash(show); !strings.Contains(s, "totp: active") || !strings.Contains(s, "method: totp") {
		t.Errorf("ben after import:\n%s", show)
	}
	// Again: the users exist, so nothing is imported.
	if _, errOut, status := cliRun(t, cfg, "", "user", "import", file); status != 2 || !strings.Contains(errOut, "user ann exists") {
		t.Errorf("second import: got %d %q", status, errOut)
	}

	out, _, _ = cliRun(t, cfg, "", "user", "export")
	if !strings.Contains(out, "ann,acme,+31612345678,ann@example.com,sms,email,,198.51.100.7 198.51.100.8") ||
		!strings.Contains(out, "ben,acme,,,totp,,,") {
		t.Errorf("export:\n%s", out)
	}
	out, _, _ = cliRun(t, cfg, "", "user", "export", "--with-secrets")
	if !strings.Contains(out, "ben,acme,,,totp,,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,") {
		t.Errorf("export --with-secrets:\n%s", out)
	}
	// What export writes, import reads (into another store).
	_, cfg2 := writeConfig(t, cliConfig)
	write(out)
	if out, errOut, status := cliRun(t, cfg2, "", "user", "import", file); status != 0 || !strings.Contains(out, "imported 2 user(s)") {
		t.Errorf("round trip: got %d %q %q", status, out, errOut)
	}
}
