package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/etcdtest"
)

// TestCodesThroughAnElection kills the leader of three etcd members while
// users answer their challenges with codes at two nodes, as gateways do:
// sending the same packet again while no answer comes. The answers given
// during the election wait for the new leader and are accepted, instead
// of being refused with the unavailable text because one check failed.
func TestCodesThroughAnElection(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	key := filepath.Join(t.TempDir(), "cluster.key")
	a := startEtcdNode(t, etcd.Endpoints(), key, "a")
	b := startEtcdNode(t, etcd.Endpoints(), key, "b")
	const users = 4
	for i := range users {
		a.cli(t, "user", "add", fmt.Sprint("u", i), "--tenant", "acme")
		a.cli(t, "user", "totp", fmt.Sprint("u", i), "--secret", testSecret)
	}
	waitFor(t, "B to see the users", func() bool {
		return shows(b, fmt.Sprint("u", users-1), "totp: active")
	})
	var challenges []*radius.Packet
	for i := range users {
		ch := mustExchange(t, a.addrs[0], request{user: fmt.Sprint("u", i), password: "x", callingStation: fmt.Sprint("203.0.113.", 10+i)})
		expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
		challenges = append(challenges, ch)
	}

	cli := etcd.Client(t)
	leader, leaderID := -1, uint64(0)
	for i, m := range etcd.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cli.Status(ctx, m.Client)
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			leader, leaderID = i, st.Leader
		}
	}
	if leader < 0 {
		t.Fatal("no member says it is the leader")
	}
	killed := time.Now()
	etcd.Kill(leader)
	// When the others have a leader again: a write waits that long at
	// most for it (store.Etcd.WriteWait, 6 s), and on a loaded machine an
	// election can take longer.
	elected := make(chan time.Duration, 1)
	go func() {
		for time.Since(killed) < 30*time.Second {
			for i, m := range etcd.Members {
				if i == leader {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				st, err := cli.Status(ctx, m.Client)
				cancel()
				if err == nil && st.Leader != 0 && st.Leader != leaderID {
					elected <- time.Since(killed)
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		elected <- time.Hour
	}()
	// The members wait 2.5 s to 5 s before they elect anew
	// (--election-timeout 2500): the first answers fall in the election.
	type answer struct {
		user       int
		sent, took time.Duration
		p          *radius.Packet
	}
	var answers []answer
	for i, ch := range challenges {
		node := []*server{a, b}[i%2]
		sent := time.Since(killed)
		p := exchangeRetrying(t, node.addrs[0], request{user: fmt.Sprint("u", i), password: totpNow(t),
			callingStation: fmt.Sprint("203.0.113.", 10+i), state: string(rfc2865.State_Get(ch))})
		t.Logf("u%d answered %v after the kill, at %s: %v after %v", i, sent.Round(time.Millisecond), node.addrs[0], codeName(p), (time.Since(killed) - sent).Round(time.Millisecond))
		answers = append(answers, answer{i, sent, time.Since(killed) - sent, p})
	}
	took := <-elected
	t.Logf("a new leader %v after the kill", took.Round(time.Millisecond))
	const budget = 6 * time.Second // store.Etcd.WriteWait's default
	for _, a := range answers {
		if a.p.Code == radius.CodeAccessAccept {
			continue
		}
		if took > a.sent+budget-time.Second {
			t.Logf("u%d: refused, the election outlasted its budget on this machine", a.user)
			continue
		}
		t.Errorf("u%d answered %v after the leader was killed, a leader again at %v: got %v %q", a.user, a.sent.Round(time.Millisecond), took.Round(time.Millisecond), codeName(a.p), rfc2865.ReplyMessage_GetString(a.p))
	}
}
