package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	cryptorand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

const damageConfig = `
radius: {listen: ["127.0.0.1:0"]}
http: {listen: ""}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: gw, address: 127.0.0.1/32, secret: testing123, tenant: acme, client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, methods: [totp, sms]}
delivery: {allow_console: true, sms: [console]}
`

// buildBinary builds the real otpgate binary for the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "otpgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// importUsers adds n TOTP users to the store of cfg through the CLI,
// without a server: enough of them and the users bucket has pages of its
// own.
func importUsers(t *testing.T, bin, dir, cfg string, n int) {
	t.Helper()
	var csv strings.Builder
	csv.WriteString("name,tenant,method,totp_secret\n")
	for i := range n {
		secret, err := otp.NewSecret(cryptorand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&csv, "user%04d,acme,totp,%s\n", i, secret)
	}
	path := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "user", "import", path, "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
}

// bucketPage finds, in the file at path, the page that is the root of a
// top-level bucket, reading the file as bbolt lays it out: two meta pages
// (the one with the higher transaction id is current), whose root bucket
// is a leaf page of elements {flags, pos, ksize, vsize uint32}, each
// bucket's value starting with its root page id. It returns the page's
// offset in the file and the page size.
func bucketPage(t *testing.T, path, bucket string) (int64, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	pageSize := int(le.Uint32(b[24:]))
	meta := b[16:]
	if le.Uint64(b[pageSize+16+48:]) > le.Uint64(meta[48:]) { // txid
		meta = b[pageSize+16:]
	}
	root := int(le.Uint64(meta[16:])) * pageSize
	page := b[root:]
	if flags := le.Uint16(page[8:]); flags != 0x02 {
		t.Fatalf("the root bucket's page has flags %#x, want a leaf (0x02)", flags)
	}
	for i := range int(le.Uint16(page[10:])) {
		e := page[16+16*i:]
		pos, ksize := int(le.Uint32(e[4:])), int(le.Uint32(e[8:]))
		if string(e[pos:pos+ksize]) == bucket {
			pgid := le.Uint64(e[pos+ksize:])
			if pgid == 0 {
				t.Fatalf("bucket %s is inline: put more in it", bucket)
			}
			return int64(pgid) * int64(pageSize), pageSize
		}
	}
	t.Fatalf("no bucket %s in %s", bucket, path)
	return 0, 0
}

// smash overwrites the page at off with garbage of a kind.
func smash(t *testing.T, path string, off int64, pageSize int, kind string) {
	t.Helper()
	garbage := make([]byte, pageSize)
	rng := rand.New(rand.NewPCG(12, 6))
	switch kind {
	case "random":
		for i := range garbage {
			garbage[i] = byte(rng.Uint32())
		}
	case "zeros":
	case "body": // the page's own header kept, so bbolt believes it
		for i := range garbage {
			garbage[i] = byte(rng.Uint32())
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ReadAt(garbage[:16], off); err != nil {
			t.Fatal(err)
		}
		f.Close()
	default:
		t.Fatalf("unknown garbage %q", kind)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(garbage, off); err != nil {
		t.Fatal(err)
	}
}

// loopPage makes the root page of a bucket, a branch page, point to
// itself as its first child: a page written where another belonged.
func loopPage(t *testing.T, path, bucket string) {
	t.Helper()
	off, _ := bucketPage(t, path, bucket)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 32) // the page header, then the first branch element {pos, ksize uint32, pgid uint64}
	if _, err := f.ReadAt(head, off); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if flags := le.Uint16(head[8:]); flags != 0x01 {
		t.Fatalf("bucket %s's root page has flags %#x, want a branch (0x01): put more in it", bucket, flags)
	}
	if _, err := f.WriteAt(head[0:8], off+16+8); err != nil { // its own id
		t.Fatal(err)
	}
}

// refused runs the binary with args and checks that it fails with exit
// status 1 and one line on standard error that names the store and says
// how to restore it: no Go stack trace.
func refused(t *testing.T, bin, storePath string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("otpgate %s did not stop: it should refuse the store\n%s", strings.Join(args, " "), stderr.String())
	}
	var lines []string
	for l := range strings.Lines(stderr.String()) {
		if !strings.HasPrefix(l, "time=") { // log lines before the store is opened
			lines = append(lines, strings.TrimRight(l, "\n"))
		}
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("otpgate %s: got %v, want exit status 1\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if len(lines) != 1 || !strings.Contains(lines[0], storePath) || !strings.Contains(lines[0], "otpgate backup") {
		t.Fatalf("otpgate %s: got on standard error\n%s\nwant one line that names %s and says to restore it from otpgate backup",
			strings.Join(args, " "), stderr.String(), storePath)
	}
}

// TestDamagedStoreRefused damages the store of a stopped server in the
// ways a disk or a careless copy does, and checks that the real binary
// refuses it with one clear line, both to serve and to a CLI command
// that opens the store itself.
func TestDamagedStoreRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		name   string
		users  int // imported before the damage
		damage func(t *testing.T, path string)
	}{
		{"users page random", 60, func(t *testing.T, path string) {
			off, size := bucketPage(t, path, "users")
			smash(t, path, off, size, "random")
		}},
		{"users page zeros", 60, func(t *testing.T, path string) {
			off, size := bucketPage(t, path, "users")
			smash(t, path, off, size, "zeros")
		}},
		{"users page body", 60, func(t *testing.T, path string) {
			off, size := bucketPage(t, path, "users")
			smash(t, path, off, size, "body")
		}},
		{"users root is its own first child", 60, func(t *testing.T, path string) {
			loopPage(t, path, "users")
		}},
		{"steps page random", 1, func(t *testing.T, path string) {
			useSteps(t, path, 200)
			off, size := bucketPage(t, path, "steps")
			smash(t, path, off, size, "random")
		}},
		{"steps page body", 1, func(t *testing.T, path string) {
			useSteps(t, path, 200)
			off, size := bucketPage(t, path, "steps")
			smash(t, path, off, size, "body")
		}},
		{"cut in half", 2000, func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"zero length beside its key file", 1, func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, cfg := writeConfig(t, damageConfig)
			importUsers(t, bin, dir, cfg, tc.users)
			path := filepath.Join(dir, "otpgate.db")
			tc.damage(t, path)
			refused(t, bin, path, "serve", "--config", cfg)
			refused(t, bin, path, "user", "list", "--config", cfg)
		})
	}
}

// useSteps records TOTP steps used by n users, through the store, so that
// the steps bucket has pages of its own.
func useSteps(t *testing.T, path string, n int) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error {
		for i := range n {
			if err := tx.UseStep(fmt.Sprintf("user%04d", i), 1000, time.Now().Add(time.Hour)); err != nil {
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
}

// TestZeroLengthStoreWithoutKeyIsFresh: an empty file and no key file is
// a first start, as before.
func TestZeroLengthStoreWithoutKeyIsFresh(t *testing.T) {
	dir, cfg := writeConfig(t, damageConfig)
	if err := os.WriteFile(filepath.Join(dir, "otpgate.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"user", "add", "alice", "--tenant", "acme", "--config", cfg}, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("user add on a fresh store: %v\n%s", err, errOut.String())
	}
}

// statusServer sends a Status-Server to addr and returns the answer's code.
func statusServer(t *testing.T, addr string) string {
	t.Helper()
	secret := []byte("testing123")
	p := radius.New(radius.CodeStatusServer, secret)
	p.Add(80, make([]byte, 16))
	raw, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(raw)
	copy(raw[len(raw)-16:], mac.Sum(nil))
	res, _, err := sendRaw(t, addr, "", raw, "")
	if err != nil {
		return err.Error()
	}
	return res.Code.String()
}

// TestStoreDamagedWhileServing damages the users bucket of the running
// server's store (bbolt maps the file; a write through another file is
// seen at once) and checks that the admin command that reads it gets an
// error, and that the server lives on: it answers health checks, logins
// (rejected: the store cannot be read) and other commands.
func TestStoreDamagedWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir, cfg := writeConfig(t, damageConfig)
	importUsers(t, bin, dir, cfg, 60)
	cmd := exec.Command(bin, "serve", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1000)
	sc := bufio.NewScanner(stderr)
	addr := ""
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "msg=listening") {
			addr = field(line, "addr")
		}
		if strings.Contains(line, "otpgate ready") {
			break
		}
	}
	go func() {
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	if addr == "" {
		cmd.Wait()
		t.Fatal("the server did not start")
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--config", cfg)...).CombinedOutput()
		return string(out), err
	}
	if out, err := cli("user", "list"); err != nil || !strings.Contains(out, "user0059") {
		t.Fatalf("user list before the damage: %v\n%s", err, out)
	}

	path := filepath.Join(dir, "otpgate.db")
	off, size := bucketPage(t, path, "users")
	smash(t, path, off, size, "random")

	for range 2 {
		out, err := cli("user", "list")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, "damaged") || strings.Contains(out, "goroutine") {
			t.Fatalf("user list on a damaged store: got %v\n%s\nwant exit status 1 and an error that says the store is damaged", err, out)
		}
		if got := statusServer(t, addr); got != "Access-Accept" {
			t.Fatalf("Status-Server after the damage: got %s, want Access-Accept", got)
		}
	}
	if res := tryExchange(addr, encodeRequest(t, request{user: "user0001", password: "pw", callingStation: "203.0.113.9"}), 2); res == nil || res.Code != radius.CodeAccessReject {
		t.Fatalf("a login on a damaged store: got %s, want Access-Reject", codeName(res))
	}
	if out, err := cli("audit", "--limit", "1"); err != nil {
		t.Fatalf("audit after the damage: %v\n%s", err, out)
	}
	select {
	case err := <-exited:
		t.Fatalf("the server died: %v", err)
	default:
	}
	// The failure is logged at error level, with what failed.
	deadline := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-logs:
			if !ok {
				t.Fatal("the server's log ended")
			}
			if strings.Contains(l, "level=ERROR") && strings.Contains(l, "damaged") && strings.Contains(l, "listUsers") {
				return
			}
		case <-deadline:
			t.Fatal("no error-level log line for the failed user list")
		}
	}
}

// TestCheckStore runs otpgate check-store on a sound store, on the running
// server's (refused, with what to type instead), on a copy made by backup,
// and on a damaged one.
func TestCheckStore(t *testing.T) {
	s := startServer(t, damageConfig)
	for i := range 60 {
		s.cli(t, "user", "add", fmt.Sprintf("user%04d", i), "--tenant", "acme")
	}
	if _, err := s.cliErr("check-store"); err == nil || !strings.Contains(err.Error(), "otpgate backup /tmp/otpgate-copy.db && otpgate check-store /tmp/otpgate-copy.db") {
		t.Fatalf("check-store while the server runs: got %v, want an error that says to check a copy", err)
	}
	copyPath := filepath.Join(s.dir, "copy.db")
	s.cli(t, "backup", copyPath)
	if out := s.cli(t, "check-store", copyPath); !strings.Contains(out, "store "+copyPath+" is sound") {
		t.Fatalf("check-store of a sound copy: got %q", out)
	}
	off, size := bucketPage(t, copyPath, "users")
	smash(t, copyPath, off, size, "body")
	_, err := s.cliErr("check-store", copyPath)
	if !errors.Is(err, store.ErrDamaged) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), copyPath) {
		t.Fatalf("check-store of a damaged copy: got %v, want one line that names the file and says it is damaged", err)
	}
}
