package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// TestStoreCopyRoundTrip moves the store of users of every kind that an
// older build left (testdata/store-format1) into etcd with otpgate store
// copy, serves from it there with every kind of login as TestUpgrade
// does (the used step, the spent recovery code, the lockout, remembered
// and reconnecting IPs, the send counted, the pending TOTP), and moves
// it back out into a file: the export is the same at each stage, and
// the code accepted on etcd is refused again by a single node serving
// from the copy.
func TestStoreCopyRoundTrip(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	config, f := oldStore(t, "testdata/store-format1")
	orig := regexp.MustCompile(`path: "([^"]+)"`).FindStringSubmatch(config)[1]
	dir := filepath.Dir(orig)
	writeConfig := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fileCfg := writeConfig("file.yaml", config)
	etcdText := strings.Replace(config, `store: {path: "`+orig+`"}`,
		`store: {path: "{{dir}}/node.db", key_file: "`+orig+`.key", backend: etcd, etcd: {endpoints: [`+endpointList(etcd.Endpoints())+`], prefix: /copy-test/}}
cluster: {node_name: a}`, 1)
	etcdCfg := writeConfig("etcd.yaml", strings.ReplaceAll(etcdText, "{{dir}}", dir))
	before, err := runCLI("user", "export", "--with-secrets", "--config", fileCfg)
	if err != nil {
		t.Fatal(err, before)
	}

	// Refused while a server holds the file.
	held, err := store.Open(orig, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCLI("store", "copy", "--from", orig, "--to", "etcd", "--config", etcdCfg)
	held.Close()
	if err == nil || !strings.Contains(err.Error(), "in use by a running otpgate") {
		t.Fatalf("copy of a file in use: got %v\n%s", err, out)
	}
	out, err = runCLI("store", "copy", "--from", orig, "--to", "etcd", "--config", etcdCfg)
	if err != nil || !strings.Contains(out, "copied 11 user(s)") {
		t.Fatalf("store copy to etcd: %v\n%s", err, out)
	}
	// Not twice over a store that is there, unless forced.
	if out, err := runCLI("store", "copy", "--from", orig, "--to", "etcd", "--config", etcdCfg); err == nil || !strings.Contains(err.Error(), "holds a store already") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second copy: got %v\n%s", err, out)
	}
	if out, err := runCLI("store", "copy", "--from", orig, "--to", "etcd", "--force", "--config", etcdCfg); err != nil {
		t.Fatalf("forced copy: %v\n%s", err, out)
	}

	c := &clock{t: f.Now}
	node := startServerAt(t, etcdText, c.Now)
	sameColumns(t, "export on etcd", csvTable(t, before), csvTable(t, node.cli(t, "user", "export", "--with-secrets")), nil)
	checkLogins(t, node, c, f)
	// Nodes run: a forced copy would pull the store from under them.
	if out, err := runCLI("store", "copy", "--from", orig, "--to", "etcd", "--force", "--config", etcdCfg); err == nil || !strings.Contains(err.Error(), "nodes a run on") {
		t.Fatalf("forced copy under a running node: got %v\n%s", err, out)
	}
	onEtcd := node.cli(t, "user", "export", "--with-secrets")
	node.stop(t)

	back := filepath.Join(t.TempDir(), "back.db")
	if out, err := runCLI("store", "copy", "--from", "etcd", "--to", back, "--config", etcdCfg); err != nil {
		t.Fatalf("store copy from etcd: %v\n%s", err, out)
	}
	if out, err := runCLI("store", "copy", "--from", "etcd", "--to", back, "--config", etcdCfg); err == nil || !strings.Contains(err.Error(), "holds a store already") {
		t.Fatalf("second copy out: got %v\n%s", err, out)
	}
	backText := strings.Replace(config, `path: "`+orig+`"`, `path: "`+back+`", key_file: "`+orig+`.key"`, 1)
	single := startServerAt(t, backText, c.Now)
	if got := single.cli(t, "user", "export", "--with-secrets"); got != onEtcd {
		t.Errorf("export after the round trip:\n%s\nwant, as on etcd:\n%s", got, onEtcd)
	}
	// tom's last code, accepted on etcd, is refused by the single node.
	code, err := otp.TOTPCode(f.Secret, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	ch := exchangeRetrying(t, single.addrs[0], request{user: "tom", password: "pw", callingStation: "203.0.113.23"})
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	got := exchangeRetrying(t, single.addrs[0], request{user: "tom", password: code, callingStation: "203.0.113.23", state: string(rfc2865.State_Get(ch))})
	expect(t, got, radius.CodeAccessChallenge, "Wrong code, 2 tries left")
	c.Advance(30 * time.Second)
	next, _ := otp.TOTPCode(f.Secret, c.Now())
	got = exchangeRetrying(t, single.addrs[0], request{user: "tom", password: next, callingStation: "203.0.113.23", state: string(rfc2865.State_Get(got))})
	expect(t, got, radius.CodeAccessAccept, "")
}
