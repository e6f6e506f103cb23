package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/etcdtest"
)

// reply is one answer a gateway got, and the node it came from.
type reply struct {
	from string
	p    *radius.Packet
}

// toBoth sends raw from one socket to every node at once, as a gateway
// that asks two RADIUS servers together does, and returns the answers in
// the order they came: until each node has logged its decision on the
// request (after marks) and noAnswerWait more has passed with nothing
// (answerWait for the first).
func toBoth(t *testing.T, raw []byte, nodes []*server, marks []int) []reply {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, n := range nodes {
		to, err := net.ResolveUDPAddr("udp", n.addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteToUDP(raw, to); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range nodes {
		n.waitLog(t, marks[i], "msg=decision")
	}
	var got []reply
	buf := make([]byte, 4096)
	for {
		wait := noAnswerWait
		if len(got) == 0 {
			wait = answerWait // a loaded machine may take its time
		}
		conn.SetReadDeadline(time.Now().Add(wait))
		k, from, err := conn.ReadFromUDP(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := radius.Parse(buf[:k], []byte("testing123"))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, reply{from: from.String(), p: p})
	}
}

// acceptedFirst sends req to both nodes at once (toBoth, after marks) and
// fails t unless the first answer is an Accept and no other is; it
// returns the answers.
func acceptedFirst(t *testing.T, what string, nodes []*server, marks []int, req request) []reply {
	t.Helper()
	got := toBoth(t, encodeRequest(t, req), nodes, marks)
	if len(got) == 0 || got[0].p.Code != radius.CodeAccessAccept {
		t.Fatalf("%s at both nodes: answers %s, want an Accept first; decisions:\n%s", what, describe(got), decisions(nodes, marks))
	}
	for _, r := range got[1:] {
		if r.p.Code == radius.CodeAccessAccept {
			t.Fatalf("%s: the same answer accepted by both nodes", what)
		}
	}
	return got
}

// describe names each answer's code and text, and where it came from.
func describe(rs []reply) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "[%s from %s %q] ", r.p.Code, r.from, rfc2865.ReplyMessage_GetString(r.p))
	}
	return b.String()
}

// decisions returns each node's decision lines after marks.
func decisions(nodes []*server, marks []int) string {
	var b strings.Builder
	for i, n := range nodes {
		for _, l := range n.logsSince(marks[i]) {
			if strings.Contains(l, "msg=decision") {
				fmt.Fprintf(&b, "node %d: %s\n", i, l)
			}
		}
	}
	return b.String()
}

// TestGatewayAsksBothNodes: a gateway that sends each request to both
// nodes at once and takes the first answer logs in with an app's code,
// and with a code sent by SMS, every time. For the app, both nodes
// challenge the password (each with a State of its own; the gateway takes
// one); for SMS one node sends the code while the other waits, then asks
// for the same code under the same State. Both judge the answer: one
// accepts it, and the other, which lost the race for the State, sends
// nothing (answered_elsewhere), so that the gateway never takes a Reject
// for a login that was accepted; the State is then used up at both.
func TestGatewayAsksBothNodes(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	key := filepath.Join(t.TempDir(), "cluster.key")
	start := func(node string) *server {
		r := strings.NewReplacer("{{etcd}}", endpointList(etcd.Endpoints()), "{{key}}", key, "{{node}}", node,
			"methods: [totp]", "methods: [totp, sms]")
		return startServer(t, r.Replace(etcdNodeConfig))
	}
	a, b := start("a"), start("b")
	nodes := []*server{a, b}
	const rounds = 4
	for i := range rounds { // a user a round: each code is new to the store
		a.cli(t, "user", "add", fmt.Sprintf("tom%d", i), "--tenant", "acme")
		a.cli(t, "user", "totp", fmt.Sprintf("tom%d", i), "--secret", testSecret)
	}
	waitFor(t, "B to see the users", func() bool { return shows(b, fmt.Sprintf("tom%d", rounds-1), "totp: active") })

	marks := func() []int { return []int{a.logLen(), b.logLen()} }
	silent := 0
	for round := range rounds {
		user, ip := fmt.Sprintf("tom%d", round), fmt.Sprintf("203.0.113.%d", 40+round)
		code := totpNow(t)
		first := toBoth(t, encodeRequest(t, request{user: user, password: "x", callingStation: ip}), nodes, marks())
		if len(first) != 2 || first[0].p.Code != radius.CodeAccessChallenge || first[1].p.Code != radius.CodeAccessChallenge {
			t.Fatalf("round %d: the password at both nodes: %d answers, want two challenges", round, len(first))
		}
		state := string(rfc2865.State_Get(first[0].p)) // the gateway takes the first
		m := marks()
		got := acceptedFirst(t, fmt.Sprintf("round %d: the code", round), nodes, m, request{user: user, password: code, callingStation: ip, state: state})
		if len(got) == 1 {
			silent++
			for i, n := range nodes {
				if line := n.waitLog(t, m[i], "msg=decision"); strings.Contains(line, "decision=reject") && !strings.Contains(line, "answered_elsewhere") {
					t.Fatalf("round %d: node %d rejected without answering: %s", round, i, line)
				}
			}
		}
		// Later, at either node, the same State is used up.
		for _, n := range nodes {
			again := mustExchange(t, n.addrs[0], request{user: user, password: code, callingStation: ip, state: state})
			expect(t, again, radius.CodeAccessReject, "Your code has expired. Please log in again.")
		}
	}
	if silent == 0 {
		t.Error("in no round did the node that lost the race keep silent")
	}

	a.cli(t, "user", "add", "sid", "--tenant", "acme", "--phone", "+31612345609", "--method", "sms")
	waitFor(t, "B to see sid", func() bool { return shows(b, "sid", "sms") })
	silent = 0
	for round := range rounds {
		ip := fmt.Sprintf("203.0.113.%d", 60+round)
		m := marks()
		first := toBoth(t, encodeRequest(t, request{user: "sid", password: "x", callingStation: ip}), nodes, m)
		if len(first) != 2 || first[0].p.Code != radius.CodeAccessChallenge || first[1].p.Code != radius.CodeAccessChallenge ||
			string(rfc2865.State_Get(first[0].p)) != string(rfc2865.State_Get(first[1].p)) {
			t.Fatalf("round %d: sid's password at both nodes: %d answers, want two challenges with one State", round, len(first))
		}
		sent := 0
		var code string
		for i, n := range nodes {
			for _, l := range n.logsSince(m[i]) {
				if strings.Contains(l, "console delivery") {
					sent++
					code = smsCode(t, l)
				}
			}
		}
		if sent != 1 {
			t.Fatalf("round %d: %d codes sent for one login asked at both nodes, want 1", round, sent)
		}
		got := acceptedFirst(t, fmt.Sprintf("round %d: sid's code", round), nodes, marks(),
			request{user: "sid", password: code, callingStation: ip, state: string(rfc2865.State_Get(first[0].p))})
		if len(got) == 1 {
			silent++
		}
	}
	if silent == 0 {
		t.Error("in no round of sent codes did the node that lost the race keep silent")
	}
}
