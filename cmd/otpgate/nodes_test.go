package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/etcdtest"
)

// nodesConfig is one node of a cluster of otpgate processes on a
// three-member etcd. {{etcd}} is the members' list (endpointList), {{key}}
// the key file all nodes share, {{port}} the web page's port. gw
// (127.0.0.1) is a VPN that sends the user's address; rdgw (127.0.0.2) an
// RD Gateway that holds a login until it is approved. acme has a lockout
// after two wrong codes and three codes per user an hour; race has no
// limits, for many logins of one user.
const nodesConfig = `
radius: {listen: ["127.0.0.1:0"]}
store:
  path: "{{dir}}/node.db"
  key_file: "{{key}}"
  backend: etcd
  etcd: {endpoints: [{{etcd}}], prefix: /otpgate-nodes/}
cluster: {node_name: "{{node}}"}
web: {listen: "127.0.0.1:{{port}}", public_url: "http://127.0.0.1:{{port}}"}
clients:
  - {name: gw, address: 127.0.0.1/32, secret: testing123, tenant: acme, client_ip_attribute: Calling-Station-Id}
  - {name: rdgw, address: 127.0.0.2/32, secret: testing123, tenant: acme, profile: rdgateway, hold: 20s,
     client_ip_attribute: Tunnel-Client-Endpoint}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [totp, sms], country_code: "31",
     reconnect_window: 0s, lockout: {failures: 2, window: 10m, duration: 1h}, limits: {sends_per_user_per_hour: 3}}
  - {name: race, mode: required, methods: [totp, sms], country_code: "31", reconnect_window: 0s, lockout: {failures: 0},
     limits: {sends_per_user_per_hour: 1000000, sends_per_destination_per_day: 1000000, daily_budget: 1000000}}
delivery: {allow_console: true, sms: [console]}
`

// nodeConfig fills nodesConfig in for one node.
func nodeConfig(t *testing.T, etcd *etcdtest.Cluster, key, node string) string {
	t.Helper()
	return strings.NewReplacer("{{etcd}}", endpointList(etcd.Endpoints()), "{{key}}", key, "{{node}}", node,
		"{{port}}", fmt.Sprint(freePort(t))).Replace(nodesConfig)
}

const (
	totpPrompt  = "Enter the code from your authenticator app"
	locked      = "Your account is locked after too many wrong codes. Please try again later or contact your administrator."
	unavailable = "Login is unavailable at the moment. Please try again later."
)

// TestNodesOnEtcd runs two "otpgate serve" processes, A and B, on a real
// etcd of three member processes, and shows over real UDP (and HTTP for
// the approval page) that any node answers any leg of a login and that
// every count is the cluster's: the checks of issue 17. The subtests
// share the cluster and run in order; the last ones kill etcd members.
func TestNodesOnEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three etcd members and two otpgate processes")
	}
	etcd := etcdtest.Start(t, 3)
	key := filepath.Join(t.TempDir(), "cluster.key")
	a := startNode(t, nodeConfig(t, etcd, key, "a"))
	b := startNode(t, nodeConfig(t, etcd, key, "b"))
	nodes := map[string]*server{"A": a, "B": b}

	t.Run("added at A, linked at A, confirmed at B", func(t *testing.T) {
		a.cli(t, "user", "add", "ann", "--tenant", "acme", "--phone", "0612345601")
		// ann's first login is at B, from home: a code by SMS, sent by B.
		mark := b.logLen()
		ch := loginUntil(t, b, "ann", "203.0.113.1", radius.CodeAccessChallenge, "Enter the code sent to +31 6*****01 (or type resend)")
		b.waitLog(t, mark, "console delivery")
		expect(t, answer(t, b, "ann", "203.0.113.1", b.lastCode(t, "+31612345601"), ch), radius.CodeAccessAccept, "")

		// A TOTP app linked at A is pending; the first code, proved at a
		// login at B, makes it active, everywhere.
		a.cli(t, "user", "add", "lin", "--tenant", "acme")
		secret := secretOf(t, a.cli(t, "user", "totp", "lin"))
		ch = loginUntil(t, b, "lin", "203.0.113.2", radius.CodeAccessChallenge, "Enter the code from your authenticator app to finish linking it")
		expect(t, answer(t, b, "lin", "203.0.113.2", totpAt(t, secret, time.Now()), ch), radius.CodeAccessAccept, "Your authenticator app is linked.")
		for _, n := range []*server{a, b} {
			waitFor(t, "the node to show lin's app active", func() bool {
				return strings.Contains(squash(n.cli(t, "user", "show", "lin")), "totp: active")
			})
		}
		next := totpAt(t, secret, time.Now().Add(30*time.Second))
		ch = mustExchange(t, b.addrs[0], request{user: "lin", password: "pw", callingStation: "203.0.113.3"})
		expect(t, ch, radius.CodeAccessChallenge, totpPrompt)
		expect(t, answer(t, b, "lin", "203.0.113.3", next, ch), radius.CodeAccessAccept, "")
	})

	a.cli(t, "user", "add", "tom", "--tenant", "acme")
	a.cli(t, "user", "totp", "tom", "--secret", testSecret)
	for _, n := range nodes {
		loginUntil(t, n, "tom", "203.0.113.9", radius.CodeAccessChallenge, totpPrompt)
	}

	t.Run("A's challenge answered at B, a code accepted at A refused at B", func(t *testing.T) {
		step := waitStepStart(t)
		ch := mustExchange(t, a.addrs[0], request{user: "tom", password: "pw", callingStation: "203.0.113.10"})
		expect(t, ch, radius.CodeAccessChallenge, totpPrompt)
		expect(t, answer(t, b, "tom", "203.0.113.10", totpAt(t, testSecret, step), ch), radius.CodeAccessAccept, "")

		code := totpAt(t, testSecret, step.Add(30*time.Second))
		chA := mustExchange(t, a.addrs[0], request{user: "tom", password: "pw", callingStation: "203.0.113.11"})
		chB := mustExchange(t, b.addrs[0], request{user: "tom", password: "pw", callingStation: "203.0.113.12"})
		expect(t, answer(t, a, "tom", "203.0.113.11", code, chA), radius.CodeAccessAccept, "")
		if got := answer(t, b, "tom", "203.0.113.12", code, chB); got.Code == radius.CodeAccessAccept {
			t.Fatal("the code A accepted was accepted again at B")
		}
	})

	t.Run("one State answered at A and B at once: one Accept, 100 times", func(t *testing.T) {
		a.cli(t, "user", "add", "rita", "--tenant", "race", "--phone", "0612345602")
		for _, n := range nodes {
			loginUntil(t, n, "rita", "198.51.100.200", radius.CodeAccessChallenge, "")
		}
		for i := range 100 {
			asked, other := a, b
			if i%2 == 1 {
				asked, other = b, a
			}
			ip := fmt.Sprintf("198.51.100.%d", i+1)
			mark := asked.logLen()
			ch := mustExchange(t, asked.addrs[0], request{user: "rita", password: "pw", callingStation: ip})
			expect(t, ch, radius.CodeAccessChallenge, "")
			code := smsCode(t, asked.waitLog(t, mark, "console delivery"))
			var wg sync.WaitGroup
			got := make([]*radius.Packet, 2)
			errs := make([]error, 2)
			pair := []*server{asked, other}
			asked.waitLog(t, mark, "decision=challenge") // logged after the code went out
			marks := []int{asked.logLen(), other.logLen()}
			for j, n := range pair {
				wg.Go(func() {
					req := request{user: "rita", password: code, callingStation: ip, state: string(rfc2865.State_Get(ch))}
					got[j], errs[j] = answerOrSilence(t, n, marks[j], req)
				})
			}
			wg.Wait()
			accepts := 0
			for j, p := range got {
				switch {
				case errs[j] != nil:
					t.Fatalf("round %d: node %d: %v", i, j, errs[j])
				case p != nil && p.Code == radius.CodeAccessAccept:
					accepts++
				}
			}
			if accepts != 1 {
				t.Fatalf("round %d: the same State answered at both nodes at once: %d Accepts, want one", i, accepts)
			}
		}
	})

	t.Run("the send limit counts logins at both nodes", func(t *testing.T) {
		a.cli(t, "user", "add", "sam", "--tenant", "acme", "--phone", "0612345603")
		known(t, "sam", a, b)
		for i, n := range []*server{a, b, a} {
			expect(t, mustExchange(t, n.addrs[0], request{user: "sam", password: "pw", callingStation: fmt.Sprintf("203.0.113.%d", 20+i)}),
				radius.CodeAccessChallenge, "Enter the code sent to +31 6*****03 (or type resend)")
		}
		expect(t, mustExchange(t, b.addrs[0], request{user: "sam", password: "pw", callingStation: "203.0.113.23"}),
			radius.CodeAccessReject, "Too many codes were requested. Please try again later.")
		expect(t, mustExchange(t, a.addrs[0], request{user: "sam", password: "pw", callingStation: "203.0.113.24"}),
			radius.CodeAccessReject, "Too many codes were requested. Please try again later.")
		sent := 0
		for _, n := range nodes {
			for _, l := range strings.Split(n.logText(), "\n") {
				if strings.Contains(l, "console delivery") && field(l, "to") == "+31612345603" {
					sent++
				}
			}
		}
		if sent != 3 {
			t.Errorf("%d codes sent to sam by both nodes, want 3 (sends_per_user_per_hour)", sent)
		}
	})

	t.Run("a lockout at A holds at B", func(t *testing.T) {
		a.cli(t, "user", "add", "loc", "--tenant", "acme")
		a.cli(t, "user", "totp", "loc", "--secret", testSecret)
		known(t, "loc", b)
		wrong := wrongTOTP(t)
		ch := loginUntil(t, a, "loc", "203.0.113.30", radius.CodeAccessChallenge, totpPrompt)
		ch = answer(t, a, "loc", "203.0.113.30", wrong, ch)
		expect(t, ch, radius.CodeAccessChallenge, "Wrong code, 2 tries left")
		expect(t, answer(t, a, "loc", "203.0.113.30", wrong, ch), radius.CodeAccessReject, locked)
		// Locked at B too, even from the office, and a right code does
		// not get a challenge to be typed into.
		waitFor(t, "B to refuse loc from the office", func() bool {
			p := mustExchange(t, b.addrs[0], request{user: "loc", password: "pw", callingStation: "192.0.2.10"})
			return p.Code == radius.CodeAccessReject && replyMessage(p) == locked
		})
		expect(t, mustExchange(t, b.addrs[0], request{user: "loc", password: "pw", callingStation: "203.0.113.31"}), radius.CodeAccessReject, locked)
		// A's wrong answer and B's do not add up to more tries than two.
		if show := squash(b.cli(t, "user", "show", "loc")); !strings.Contains(show, "locked: until") {
			t.Errorf("B's user show: got\n%s\nwant locked", show)
		}
	})

	// An attacker's versions: the same at both nodes at once.
	t.Run("one TOTP code on two challenges, at A and B at once: one Accept, 20 times", func(t *testing.T) {
		var csv strings.Builder
		csv.WriteString("name,tenant,method,totp_secret\n")
		for i := range 20 {
			fmt.Fprintf(&csv, "twin%d,race,totp,%s\n", i, testSecret)
		}
		path := filepath.Join(t.TempDir(), "twins.csv")
		if err := os.WriteFile(path, []byte(csv.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		a.cli(t, "user", "import", path)
		for i := range 20 {
			user := fmt.Sprintf("twin%d", i)
			chs := make([]*radius.Packet, 2)
			for j, n := range []*server{a, b} {
				chs[j] = loginUntil(t, n, user, fmt.Sprintf("198.51.101.%d", 2*i+j+1), radius.CodeAccessChallenge, totpPrompt)
			}
			code := totpAt(t, testSecret, waitStepStart(t))
			got := make([]*radius.Packet, 2)
			var wg sync.WaitGroup
			for j, n := range []*server{a, b} {
				wg.Go(func() { got[j] = answer(t, n, user, fmt.Sprintf("198.51.101.%d", 2*i+j+1), code, chs[j]) })
			}
			wg.Wait()
			if (got[0].Code == radius.CodeAccessAccept) == (got[1].Code == radius.CodeAccessAccept) {
				t.Fatalf("round %d: one code answered at A and B at once got %s and %s, want one Accept", i, got[0].Code, got[1].Code)
			}
		}
	})

	t.Run("wrong codes at A and B at once: the lockout counts them all", func(t *testing.T) {
		a.cli(t, "user", "add", "lee", "--tenant", "acme")
		a.cli(t, "user", "totp", "lee", "--secret", testSecret)
		known(t, "lee", a, b)
		const n = 8
		chs := make([]*radius.Packet, n)
		for i := range n {
			chs[i] = loginUntil(t, []*server{a, b}[i%2], "lee", fmt.Sprintf("203.0.113.%d", 60+i), radius.CodeAccessChallenge, totpPrompt)
		}
		wrong := wrongTOTP(t)
		got := make([]*radius.Packet, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				got[i] = answer(t, []*server{a, b}[i%2], "lee", fmt.Sprintf("203.0.113.%d", 60+i), wrong, chs[i])
			})
		}
		wg.Wait()
		// lockout.failures is 2: the first wrong code is told its tries
		// left, the second locks; every later one finds the user locked.
		judged := 0
		for _, p := range got {
			if p.Code != radius.CodeAccessReject || replyMessage(p) != locked {
				judged++
			}
		}
		if judged > 1 {
			t.Errorf("%d of %d wrong codes sent at once to both nodes were judged without the lockout, want at most 1", judged, n)
		}
		for _, n := range nodes {
			loginUntil(t, n, "lee", "192.0.2.9", radius.CodeAccessReject, locked)
		}
	})

	t.Run("logins at A and B at once: the send limit holds exactly", func(t *testing.T) {
		a.cli(t, "user", "add", "sue", "--tenant", "acme", "--phone", "0612345605")
		known(t, "sue", a, b)
		const n = 10
		got := make([]*radius.Packet, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				got[i] = mustExchange(t, []*server{a, b}[i%2].addrs[0], request{user: "sue", password: "pw", callingStation: fmt.Sprintf("203.0.113.%d", 80+i)})
			})
		}
		wg.Wait()
		challenged, sent := 0, 0
		for _, p := range got {
			if p.Code == radius.CodeAccessChallenge {
				challenged++
			}
		}
		for _, n := range nodes {
			for _, l := range strings.Split(n.logText(), "\n") {
				if strings.Contains(l, "console delivery") && field(l, "to") == "+31612345605" {
					sent++
				}
			}
		}
		if challenged != 3 || sent != 3 {
			t.Errorf("%d logins at once at both nodes: %d challenged, %d codes sent, want 3 and 3 (sends_per_user_per_hour)", n, challenged, sent)
		}
	})

	t.Run("an approval clicked on B's page releases a login held at A", func(t *testing.T) {
		a.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "0612345604")
		known(t, "hank", a, b)
		mark := a.logLen()
		held := sendHeld(t, a.addrs[0], "127.0.0.2", rdgRequest(t, "hank", "LAPTOP-HANK", "203.0.113.40"), 2, 20*time.Second)
		link := regexp.MustCompile(`/a/[0-9a-f]{32}`).FindString(a.waitLog(t, mark, "console delivery"))
		if link == "" {
			t.Fatalf("no approval link sent by A:\n%s", a.logText())
		}
		c := newCookieClient(t, "http://"+b.web)
		if code := c.do("GET", link, nil); code != 200 || !strings.Contains(c.page, "LAPTOP-HANK") {
			t.Fatalf("B's approval page: got %d\n%s", code, c.page)
		}
		if code := c.post(link, "action", "approve"); code != 200 || !strings.Contains(c.page, "Approved.") {
			t.Fatalf("approve at B: got %d\n%s", code, c.page)
		}
		got := <-held
		if got.first == nil || got.first.Code != radius.CodeAccessAccept {
			t.Fatalf("the login held at A got %v, want Access-Accept", codeName(got.first))
		}
		if got.n != 1 {
			t.Errorf("got %d answers to a login sent twice while held, want 1", got.n)
		}
		// Used: neither page takes it again.
		for _, n := range []*server{a, b} {
			c := newCookieClient(t, "http://"+n.web)
			if code := c.do("GET", link, nil); code != 410 {
				t.Errorf("the used link at %s: got %d, want 410", n.web, code)
			}
		}
	})

	t.Run("a node with another key refuses to start", func(t *testing.T) {
		dir := t.TempDir()
		other := filepath.Join(dir, "other.key")
		cfg := filepath.Join(dir, "otpgate.yaml")
		// The key file is made by the first start (it is missing): it is
		// not the cluster's.
		text := strings.ReplaceAll(nodeConfig(t, etcd, other, "c"), "{{dir}}", dir) + "\nhttp: {listen: \"\"}\n"
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, otpgateBinary(t), "serve", "--config", cfg).CombinedOutput()
		if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "every node of a cluster uses the same key file") {
			t.Fatalf("a node with another key: got %v\n%s", err, out)
		}
	})

	// Everything a login needs, at both nodes: a new user added at B, a
	// TOTP login asked at one node and answered at the other, a code used
	// once, an office login.
	works := func(t *testing.T, user, net string) {
		t.Helper()
		b.cli(t, "user", "add", user, "--tenant", "acme")
		b.cli(t, "user", "totp", user, "--secret", testSecret)
		step := waitStepStart(t)
		ch := loginUntil(t, a, user, net+".1", radius.CodeAccessChallenge, totpPrompt)
		expect(t, answer(t, b, user, net+".1", totpAt(t, testSecret, step), ch), radius.CodeAccessAccept, "")
		ch = mustExchange(t, b.addrs[0], request{user: user, password: "pw", callingStation: net + ".2"})
		if got := answer(t, a, user, net+".2", totpAt(t, testSecret, step), ch); got.Code == radius.CodeAccessAccept {
			t.Fatal("a code used at B was accepted again at A")
		}
		for _, n := range []*server{a, b} {
			expect(t, mustExchange(t, n.addrs[0], request{user: user, password: "pw", callingStation: "192.0.2.9"}), radius.CodeAccessAccept, "HQ IP Allowed!")
		}
	}

	t.Run("one etcd member killed changes nothing", func(t *testing.T) {
		// A follower: nothing changes, not even for a moment.
		follower := (leader(t, etcd) + 1) % len(etcd.Members)
		etcd.Kill(follower)
		works(t, "kim", "198.51.100")
		etcd.RestartMember(t, etcd.Members[follower])
		etcd.WaitMember(t, follower)
		// The leader: once the other two have elected one of them, which
		// takes the election timeout (2.5 s here, 1 s by default), all
		// works again.
		start := time.Now()
		etcd.Kill(leader(t, etcd))
		etcd.WaitReady(t)
		t.Logf("the leader killed, a new one after %s", time.Since(start).Round(10*time.Millisecond))
		works(t, "kit", "198.51.102")
	})

	t.Run("etcd down: office logins answered, codes refused, then back", func(t *testing.T) {
		a.cli(t, "user", "add", "olga", "--tenant", "acme")
		a.cli(t, "user", "totp", "olga", "--secret", testSecret)
		known(t, "olga", b)
		ch := loginUntil(t, a, "olga", "203.0.113.50", radius.CodeAccessChallenge, totpPrompt)
		etcd.Stop()
		for _, n := range nodes {
			waitFor(t, "the node to notice etcd is down", func() bool { return strings.Contains(n.logText(), "etcd is unavailable") })
		}
		for _, n := range nodes {
			expect(t, mustExchange(t, n.addrs[0], request{user: "olga", password: "pw", callingStation: "192.0.2.9"}), radius.CodeAccessAccept, "HQ IP Allowed!")
			// A code is never accepted without its use recorded.
			expect(t, answer(t, n, "olga", "203.0.113.50", totpNow(t), ch), radius.CodeAccessReject, unavailable)
			expect(t, mustExchange(t, n.addrs[0], request{user: "olga", password: "pw", callingStation: "203.0.113.51"}), radius.CodeAccessReject, unavailable)
		}
		etcd.Restart(t)
		for _, n := range nodes {
			waitFor(t, "the node to see etcd again", func() bool { return strings.Contains(n.logText(), "etcd is available again") })
		}
		// Three members started at once may elect more than once before
		// they settle, and each node refuses writes from a failed probe
		// to the next good one: wait until each node writes.
		tries := 0
		for _, n := range nodes {
			waitFor(t, "the node to write to etcd again", func() bool {
				tries++
				_, err := n.cliErr("user", "add", fmt.Sprintf("back%d", tries), "--tenant", "acme")
				return err == nil
			})
		}
		works(t, "kay", "198.51.103")
	})
}

// loginUntil logs user in at n from ip until the answer is code with
// msg (any message if msg is empty), and returns it: a node's copy of
// the store follows the other node's writes through a watch, a moment
// later.
func loginUntil(t *testing.T, n *server, user, ip string, code radius.Code, msg string) *radius.Packet {
	t.Helper()
	var p *radius.Packet
	waitFor(t, fmt.Sprintf("%s's login at %s to get %s %q", user, ip, code, msg), func() bool {
		p = mustExchange(t, n.addrs[0], request{user: user, password: "pw", callingStation: ip})
		return p.Code == code && (msg == "" || replyMessage(p) == msg)
	})
	return p
}

// known waits until both nodes know user: a login from the office is
// accepted (an unknown user's is refused).
func known(t *testing.T, user string, nodes ...*server) {
	t.Helper()
	for _, n := range nodes {
		loginUntil(t, n, user, "192.0.2.9", radius.CodeAccessAccept, "HQ IP Allowed!")
	}
}

// answer sends code as the answer to the challenge ch, to node n.
func answer(t *testing.T, n *server, user, ip, code string, ch *radius.Packet) *radius.Packet {
	t.Helper()
	return mustExchange(t, n.addrs[0], request{user: user, password: code, callingStation: ip, state: string(rfc2865.State_Get(ch))})
}

// answerOrSilence sends req to node n and returns its answer, or nil
// when n decided to send none (another node answered the same State at
// the same moment: answered_elsewhere), as n's decision logged after
// mark says.
func answerOrSilence(t *testing.T, n *server, mark int, req request) (*radius.Packet, error) {
	raddr, err := net.ResolveUDPAddr("udp", n.addrs[0])
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.Write(encodeRequest(t, req)); err != nil {
		return nil, err
	}
	if line := n.waitLog(t, mark, "msg=decision"); strings.Contains(line, "reason=answered_elsewhere") {
		return nil, nil
	}
	conn.SetReadDeadline(time.Now().Add(answerWait))
	buf := make([]byte, 4096)
	k, err := conn.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("no answer: %w", err)
	}
	return radius.Parse(buf[:k], []byte("testing123"))
}

// smsCode is the code in a console delivery's log line.
func smsCode(t *testing.T, line string) string {
	t.Helper()
	code := regexp.MustCompile(`\d{6}`).FindString(field(line, "text"))
	if code == "" {
		t.Fatalf("no code in %q", line)
	}
	return code
}

// waitStepStart returns the time now, or the start of the next TOTP step
// when this one ends within five seconds, so that the codes a test
// computes for it are still current when they arrive.
func waitStepStart(t *testing.T) time.Time {
	t.Helper()
	now := time.Now()
	if left := 30*time.Second - now.Sub(now.Truncate(30*time.Second)); left < 5*time.Second {
		time.Sleep(left) // the clock is real here: the nodes are processes
		now = time.Now()
	}
	return now
}

// leader is the index of etcd's leader.
func leader(t *testing.T, etcd *etcdtest.Cluster) int {
	t.Helper()
	cli := etcd.Client(t)
	for i, m := range etcd.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cli.Status(ctx, m.Client)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("etcd has no leader")
	return 0
}
