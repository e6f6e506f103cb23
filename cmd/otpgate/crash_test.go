package main

import (
	"bufio"
	"context"
	cryptorand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

const crashConfig = `
radius: {listen: ["127.0.0.1:0"]}
http: {listen: ""}
store: {path: "{{dir}}/otpgate.db"{{etcd}}}
clients:
  - {name: gw, address: 127.0.0.1/32, secret: testing123, tenant: acme, client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, methods: [totp, sms], lockout: {failures: 0},
     limits: {sends_per_user_per_hour: 1000000, sends_per_destination_per_day: 1000000, daily_budget: 1000000}}
delivery: {allow_console: true, sms: [console]}
`

// TestCrashSafety runs the real server under write-heavy load — logins
// that send codes, TOTP logins that prove codes, enrolments through the
// admin socket — kills it with SIGKILL at random moments, and checks after
// each kill that the store passes its consistency check, that every
// enrolment the CLI reported done is in it, and, once the server is back,
// that no TOTP code it accepted before the kill is accepted again. It
// runs on each backend: a bbolt file, and a three-member etcd (where the
// node's own file keeps only its audit log).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it several times")
	}
	t.Run("bbolt", func(t *testing.T) {
		dir, cfg := writeConfig(t, strings.ReplaceAll(crashConfig, "{{etcd}}", ""))
		crashSafety(t, dir, cfg, 4000, store.Options{})
	})
	t.Run("etcd", func(t *testing.T) {
		etcd := etcdtest.Start(t, 3)
		dir, cfg := writeConfig(t, strings.ReplaceAll(crashConfig, "{{etcd}}",
			", backend: etcd, etcd: {endpoints: ["+endpointList(etcd.Endpoints())+"], prefix: /crash/}"))
		crashSafety(t, dir, cfg, 1000, store.Options{Etcd: &store.Etcd{Endpoints: etcd.Endpoints(), Prefix: "/crash/"}})
	})
}

// crashSafety is TestCrashSafety on the store cfg configures, with nTOTP
// TOTP users: enough that logins keep proving codes (and writing their
// steps) until the moment of each kill. opts opens the store as the
// server does, to check it after each kill.
func crashSafety(t *testing.T, dir, cfg string, nTOTP int, opts store.Options) {
	bin := otpgateBinary(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var done []string // users the CLI said it enrolled

	// TOTP users, imported before the server first starts, each with a
	// secret of its own.
	secrets := make([]string, nTOTP)
	for i := range secrets {
		secret, err := otp.NewSecret(cryptorand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		secrets[i] = secret
	}
	// One import, or several of batch users each: a transaction in etcd
	// takes at most 128 keys, and "user import" writes all in one (for
	// now).
	batch := nTOTP
	if opts.Etcd != nil {
		batch = 100
	}
	for from := 0; from < nTOTP; from += batch {
		var csv strings.Builder
		csv.WriteString("name,tenant,method,totp_secret\n")
		for i := from; i < min(from+batch, nTOTP); i++ {
			fmt.Fprintf(&csv, "totp%d,acme,totp,%s\n", i, secrets[i])
		}
		csvPath := filepath.Join(dir, "totp.csv")
		if err := os.WriteFile(csvPath, []byte(csv.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "user", "import", csvPath, "--config", cfg).CombinedOutput(); err != nil {
			t.Fatalf("import TOTP users: %v\n%s", err, out)
		}
	}
	var accepted []provedCode // TOTP codes the server accepted, over all rounds
	seen := map[provedCode]bool{}
	next := 0    // the next TOTP user to log in
	replays := 0 // codes tried again after a kill while still in their window

	const rounds = 5
	for round := range rounds + 1 { // the last start only tries the codes again
		cmd := exec.Command(bin, "serve", "--config", cfg)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		addr := ""
		sc := bufio.NewScanner(stderr)
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
			}
		}()
		if addr == "" {
			cmd.Wait()
			t.Fatalf("round %d: the server did not start", round)
		}

		// Every code accepted before the last kill, while its step is
		// still in the window, is refused now: the step it used was on
		// disk before the Access-Accept went out.
		for i, a := range accepted {
			if !stillValid(secrets[a.user], a.code, time.Now()) {
				continue
			}
			user := fmt.Sprintf("totp%d", a.user)
			ip := fmt.Sprintf("198.51.100.%d", 1+(round*len(accepted)+i)%250)
			ch := tryExchange(addr, encodeRequest(t, request{user: user, password: "pw", callingStation: ip}), 3)
			if ch == nil || ch.Code != radius.CodeAccessChallenge {
				continue // a trusted place, or no answer: not a replay
			}
			res := tryExchange(addr, encodeRequest(t, request{user: user, password: a.code, state: string(rfc2865.State_Get(ch)), callingStation: ip}), 3)
			if res == nil {
				t.Fatalf("round %d: no answer to a replayed code", round)
			}
			if res.Code == radius.CodeAccessAccept {
				t.Fatalf("round %d: %s's code %s, accepted before the kill, was accepted again", round, user, a.code)
			}
			replays++
		}
		if round == rounds {
			cmd.Process.Kill()
			cmd.Wait()
			break
		}

		ctx, stop := context.WithCancel(context.Background())
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 4 { // enrolments through the admin socket
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					name := fmt.Sprintf("r%dw%di%d", round, w, i)
					out, err := exec.Command(bin, "user", "add", name, "--tenant", "acme", "--phone", "+3161234"+fmt.Sprintf("%04d", i%10000), "--config", cfg).CombinedOutput()
					if err == nil && strings.Contains(string(out), "added user "+name) {
						mu.Lock()
						done = append(done, name)
						mu.Unlock()
					}
				}
			})
		}
		for w := range 4 { // logins that store challenges and send codes
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					mu.Lock()
					user := "nobody"
					if len(done) > 0 {
						user = done[(w*7919+i)%len(done)]
					}
					mu.Unlock()
					fire(addr, encodeRequest(t, request{user: user, password: "pw", callingStation: fmt.Sprintf("203.0.113.%d", i%250)}))
				}
			})
		}
		for range 2 { // TOTP logins that prove a code and write its step
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					mu.Lock()
					n := next % nTOTP
					next++
					mu.Unlock()
					user := fmt.Sprintf("totp%d", n)
					ip := fmt.Sprintf("192.0.2.%d", i%250)
					ch := tryExchange(addr, encodeRequest(t, request{user: user, password: "pw", callingStation: ip}), 1)
					if ch == nil || ch.Code != radius.CodeAccessChallenge {
						continue
					}
					code, err := otp.TOTPCode(secrets[n], time.Now())
					if err != nil {
						continue
					}
					res := tryExchange(addr, encodeRequest(t, request{user: user, password: code, state: string(rfc2865.State_Get(ch)), callingStation: ip}), 1)
					if res != nil && res.Code == radius.CodeAccessAccept {
						a := provedCode{user: n, code: code}
						mu.Lock()
						twice := seen[a]
						seen[a] = true
						accepted = append(accepted, a)
						mu.Unlock()
						if twice {
							t.Errorf("round %d: %s's code %s was accepted twice", round, user, code)
						}
					}
				}
			})
		}
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond) // a random moment to crash at, not a wait for time
		cmd.Process.Kill()
		cmd.Wait()
		stop()
		wg.Wait()

		db, err := store.Open(filepath.Join(dir, "otpgate.db"), opts)
		if err != nil {
			t.Fatalf("round %d: open after SIGKILL: %v", round, err)
		}
		if err := db.Check(); err != nil {
			t.Fatalf("round %d: consistency check after SIGKILL: %v", round, err)
		}
		var missing []string
		db.View(func(tx *store.Tx) error {
			for _, name := range done {
				if _, err := tx.User(name); err != nil {
					missing = append(missing, name)
				}
			}
			return nil
		})
		db.Close()
		if len(missing) > 0 {
			t.Fatalf("round %d: %d enrolments reported done are gone after SIGKILL: %v", round, len(missing), missing)
		}
	}
	if len(done) == 0 {
		t.Fatal("no enrolment went through; the test tested nothing")
	}
	if replays == 0 {
		t.Fatalf("no accepted TOTP code (of %d) could be tried again after a kill; the test tested nothing", len(accepted))
	}
	t.Logf("%d enrolments over %d crashes, none lost; %d TOTP codes accepted, %d tries to use one again after a kill, all refused", len(done), rounds, len(accepted), replays)
}

// provedCode is a TOTP code the server accepted for TOTP user number user.
type provedCode struct {
	user int
	code string
}

// stillValid reports whether code is one the server would take at now by
// time alone: the code of secret for now's step or for one either side.
func stillValid(secret, code string, now time.Time) bool {
	for _, d := range []time.Duration{-otp.Period, 0, otp.Period} {
		if c, err := otp.TOTPCode(secret, now.Add(d)); err == nil && c == code {
			return true
		}
	}
	return false
}

// tryExchange sends a request, up to tries times while no answer comes,
// and returns the answer, or nil when there is none (the server may be
// dead by now) or it does not verify. A second copy is a retransmission:
// the server answers it from its cache, or afresh if the first was lost.
func tryExchange(addr string, raw []byte, tries int) *radius.Packet {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return nil
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	for range tries {
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write(raw); err != nil {
			return nil
		}
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		if !radius.IsAuthenticResponse(buf[:n], raw, []byte("testing123")) {
			return nil
		}
		p, err := radius.Parse(buf[:n], []byte("testing123"))
		if err != nil {
			return nil
		}
		return p
	}
	return nil
}

// fire sends a request and waits briefly for any answer, ignoring every
// error: the server may be dead by now.
func fire(addr string, raw []byte) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write(raw); err != nil {
		return
	}
	buf := make([]byte, 4096)
	conn.Read(buf)
}
