package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestFailedStartCleansUp: a start that fails part way (the web port is
// taken) takes away the store, key and admin socket it made, and only
// those: a store and key that were there before it stay.
func TestFailedStartCleansUp(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir, cfg := writeConfig(t, `
radius: {listen: ["127.0.0.1:0"]}
http: {listen: "127.0.0.1:0"}
store: {path: "{{dir}}/otpgate.db"}
clients: [{name: gw, address: 127.0.0.1/32, secret: testing123, tenant: acme}]
tenants: [{name: acme, methods: [totp, sms]}]
web: {listen: "`+taken.Addr().String()+`", public_url: "https://otp.example.com"}
`)
	files := func() []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	serve := func() string {
		var logs bytes.Buffer
		err := run(context.Background(), []string{"serve", "--config", cfg}, strings.NewReader(""), io.Discard, &logs)
		if err == nil || !strings.Contains(err.Error(), "web listen on "+taken.Addr().String()) {
			t.Fatalf("serve with its web port taken: got %v, want the web listen error\n%s", err, logs.String())
		}
		return err.Error()
	}

	serve()
	if got := files(); !slices.Equal(got, []string{"otpgate.yaml"}) {
		t.Errorf("after a failed first start the directory holds %v, want only otpgate.yaml", got)
	}

	// A store made before (by the CLI) is the admin's: it stays, users and key.
	if _, errOut, status := cliRun(t, cfg, "", "user", "add", "ann", "--tenant", "acme", "--phone", "+31612345678"); status != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	serve()
	if got := files(); !slices.Equal(got, []string{"otpgate.db", "otpgate.db.key", "otpgate.yaml"}) {
		t.Errorf("after a failed start on a store made before, the directory holds %v, want otpgate.db, otpgate.db.key and otpgate.yaml", got)
	}
	if out, errOut, status := cliRun(t, cfg, "", "user", "show", "ann"); status != 0 || !strings.Contains(out, "+31612345678") {
		t.Errorf("user show ann after the failed start: status %d, %s%s", status, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "otpgate.db.sock")); err == nil {
		t.Errorf("the admin socket is left behind")
	}
}

// TestRootOwnedStore: "sudo otpgate user add" before the first serve makes
// a store that is root's; the server's user then cannot open it, and serve
// and the CLI say which file, whose it is and what to run, not only
// "permission denied". As root the commands run as nobody in a process
// of their own; as another user the store is made unreadable instead.
func TestRootOwnedStore(t *testing.T) {
	dir, cfg := writeConfig(t, cliConfig)
	if _, errOut, status := cliRun(t, cfg, "", "user", "add", "ann", "--tenant", "acme"); status != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	storePath := filepath.Join(dir, "otpgate.db")
	want := []string{storePath + " is owned by "}
	if os.Getuid() == 0 {
		want = append(want, "owned by root", "runs as nobody", "sudo chown otpgate "+storePath+"*")
	} else if err := os.Chmod(storePath, 0); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"serve"}, {"user", "list"}, {"user", "add", "bo", "--tenant", "acme"}} {
		out, status := runAsOther(t, dir, append(args, "--config", cfg)...)
		if status != 1 {
			t.Errorf("%v on a store it may not open: exit %d, want 1:\n%s", args, status, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%v on a store it may not open: the error lacks %q:\n%s", args, w, out)
			}
		}
	}
}

// runAsOther runs otpgate with args through run(): as root, in a copy of
// the test binary started as nobody (TestHelperRun); otherwise here.
func runAsOther(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	if os.Getuid() != 0 {
		var out bytes.Buffer
		err := run(context.Background(), args, strings.NewReader(""), &out, &out)
		return out.String(), exitCode(err, &out)
	}
	// nobody must reach the config, the store's directory and the binary.
	for d := dir; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "otpgate.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "otpgate.test")
	if _, err := os.Stat(bin); err != nil {
		data, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^TestHelperRun$")
	cmd.Env = append(os.Environ(), "OTPGATE_HELPER_ARGS="+strings.Join(args, "\x1f"))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run as nobody: %v", err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// TestHelperRun is otpgate itself when runAsOther starts it.
func TestHelperRun(t *testing.T) {
	args := os.Getenv("OTPGATE_HELPER_ARGS")
	if args == "" {
		return
	}
	err := run(context.Background(), strings.Split(args, "\x1f"), strings.NewReader(""), os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}
