package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"layeh.com/radius"
)

func TestRDGatewayMachineNameIsBoundToTheAddress(t *testing.T) {
	// MS-Machine-Name is whatever the client says. Hank approves a login
	// from LAPTOP-HANK at 203.0.113.9; a login giving the same name from
	// another address, or from none, must be held for approval again, not
	// let in as "Reconnected".
	w := startRDG(t)
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "0612345678")

	mark := w.logLen()
	held := sendHeld(t, w.addrs[0], "127.0.0.1", rdgRequest(t, "hank", "LAPTOP-HANK", "203.0.113.9"), 1, 20*time.Second)
	w.browse(t, chromedp.Navigate(w.link(t, mark)), chromedp.Click(chromedp.CSS("#approve")))
	if got := <-held; got.first == nil || got.first.Code != radius.CodeAccessAccept {
		t.Fatalf("the approved login got %v, want Access-Accept", codeName(got.first))
	}

	for _, ip := range []string{"198.51.100.66", ""} {
		mark = w.logLen()
		held = sendHeld(t, w.addrs[0], "127.0.0.1", rdgRequest(t, "hank", "LAPTOP-HANK", ip), 1, 20*time.Second)
		// A held login sends its link before it is decided.
		if line := w.firstLog(t, mark, "console delivery", "msg=decision"); !strings.Contains(line, "console delivery") {
			t.Fatalf("LAPTOP-HANK from %q: got %q before any approval link, want the login held", ip, line)
		}
		w.browse(t, chromedp.Navigate(w.link(t, mark)), chromedp.Click(chromedp.CSS("#deny")))
		if got := <-held; got.first == nil || got.first.Code != radius.CodeAccessReject {
			t.Fatalf("LAPTOP-HANK from %q, denied: got %v, want Access-Reject", ip, codeName(got.first))
		}
	}

	// From the address that was approved: in at once.
	got := <-sendHeld(t, w.addrs[0], "127.0.0.1", rdgRequest(t, "hank", "LAPTOP-HANK", "203.0.113.9"), 1, 5*time.Second)
	if got.first == nil || got.first.Code != radius.CodeAccessAccept || replyMessage(got.first) != "Reconnected" {
		t.Errorf("LAPTOP-HANK from the approved address: got %v %q, want Access-Accept \"Reconnected\"", codeName(got.first), replyMessage(got.first))
	}
}

// firstLog waits for a log line after the first skip lines that contains
// one of want, and returns the first such line.
func (s *server) firstLog(t *testing.T, skip int, want ...string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		for _, l := range s.logs[min(skip, len(s.logs)):] {
			for _, w := range want {
				if strings.Contains(l, w) {
					s.mu.Unlock()
					return l
				}
			}
		}
		s.mu.Unlock()
		select {
		case <-s.newLog:
		case <-deadline:
			t.Fatalf("no log line with any of %q:\n%s", want, s.logText())
		}
	}
}
