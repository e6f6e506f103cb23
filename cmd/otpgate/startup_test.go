package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
