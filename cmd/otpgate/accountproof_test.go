package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
)

// TestAccountStolenSessionCannotTakeOver is what someone who has taken a
// signed-in /me session (a cookie from a shared computer, a browser left
// open) would do with its minutes: ask for new recovery codes, which need
// no code, then link their own app with one of them, as "link a new
// phone" allows. A session must not be worth more than its minutes: new
// recovery codes need the current second factor, as a new app does.
func TestAccountStolenSessionCannotTakeOver(t *testing.T) {
	w := startEnrol(t, "local")
	w.addUser(t, "erin")
	w.cli(t, "user", "totp", "erin", "--secret", testSecret)

	c := newCookieClient(t, "http://"+w.web)
	c.do("GET", "/signin?to=me", nil)
	c.post("/signin", "to", "me", "name", "erin", "password", "hunter2")
	if code := c.post("/signin", "to", "me", "code", w.code(t)); code != http.StatusSeeOther || c.where != "/me" {
		t.Fatalf("sign-in: got %d to %q\n%s", code, c.where, c.page)
	}
	w.clock.Advance(30 * time.Second)
	recovery := regexp.MustCompile(`recovery codes:[^\n]*`)
	before := recovery.FindString(w.cli(t, "user", "show", "erin"))

	// The thief, with erin's cookie and no code of hers.
	c.do("GET", "/me", nil)
	c.post("/me", "action", "codes")
	codes := regexp.MustCompile(`<ol class="codes" id="recovery-codes">(.*?)</ol>`).FindStringSubmatch(c.page)
	if codes != nil {
		got := regexp.MustCompile(`<li>([^<]+)</li>`).FindAllStringSubmatch(codes[1], -1)
		t.Errorf("a session without a code got %d new recovery codes", len(got))
		if len(got) == 0 {
			return
		}
		// One of them passes for the current second factor, and a new app
		// follows: the account is the thief's for good.
		c.post("/me", "action", "saved", "saved", "on")
		c.post("/me", "action", "back")
		c.post("/me", "action", "link")
		c.post("/me", "action", "code", "code", got[0][1])
		secret := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(c.page)
		if secret == nil {
			t.Fatalf("the recovery code did not lead to a new app's secret:\n%s", c.page)
		}
		c.post("/me", "action", "code", "code", totpAt(t, secret[1], w.clock.Now()))
		w.clock.Advance(30 * time.Second)
		ch := mustExchange(t, w.addrs[0], request{user: "erin", password: "hunter2", callingStation: "203.0.113.9"})
		st := ch.Get(24)
		acc := mustExchange(t, w.addrs[0], request{user: "erin", password: totpAt(t, secret[1], w.clock.Now()), callingStation: "203.0.113.9", state: string(st)})
		if acc.Code == radius.CodeAccessAccept {
			t.Errorf("the thief's own app logs in as erin through the gateway")
		}
		return
	}
	// Asked for a code instead: without it, nothing.
	if !strings.Contains(c.page, `value="code"`) {
		t.Fatalf("new recovery codes neither shown nor asked for a code:\n%s", c.page)
	}
	c.post("/me", "action", "code", "code", "000000")
	if strings.Contains(c.page, `id="recovery-codes"`) {
		t.Errorf("a wrong code got new recovery codes")
	}
	if after := recovery.FindString(w.cli(t, "user", "show", "erin")); after != before || before == "" {
		t.Errorf("erin's recovery codes: %q before the thief, %q after", before, after)
	}

	// With her code, they come.
	c.do("GET", "/me", nil)
	c.post("/me", "action", "codes")
	w.clock.Advance(30 * time.Second)
	c.post("/me", "action", "code", "code", w.code(t))
	if n := strings.Count(c.page, "<li>"); !strings.Contains(c.page, `id="recovery-codes"`) || n < 10 {
		t.Errorf("with the current code, no new recovery codes:\n%s", c.page)
	}
}
