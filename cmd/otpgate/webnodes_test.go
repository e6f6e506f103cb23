package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/etcdtest"
)

// TestWebPagesAcrossNodes serves one browser's requests from two nodes on
// etcd, as a load balancer without sticky sessions does: a form A served
// is taken by B, a session started at A is known at B, and after "this
// was not me" at B the session's cookie no longer works at A, not even
// once an administrator has unlocked the account.
func TestWebPagesAcrossNodes(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	key := filepath.Join(t.TempDir(), "cluster.key")
	withWeb := func(node string) *server {
		r := strings.NewReplacer("{{etcd}}", endpointList(etcd.Endpoints()), "{{key}}", key, "{{node}}", node)
		return startServer(t, r.Replace(etcdNodeConfig)+"\nweb: {listen: \"127.0.0.1:0\", public_url: \"https://otp.example.com\", password: local}\n")
	}
	a := withWeb("a")
	b := withWeb("b")
	if err := run(t.Context(), []string{"user", "add", "erin", "--tenant", "acme", "--password-stdin", "--config", a.config},
		strings.NewReader("hunter2\n"), &strings.Builder{}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	a.cli(t, "user", "totp", "erin", "--secret", testSecret)
	waitFor(t, "B to see erin", func() bool { return shows(b, "erin", "totp: active") })
	at := func(c *cookieClient, s *server) *cookieClient { c.base = "http://" + s.web; return c }
	c := newCookieClient(t, "")
	// The sign-in form from A, posted to B; the code's form from B,
	// posted to A.
	at(c, a).do("GET", "/signin?to=me", nil)
	if code := at(c, b).post("/signin", "to", "me", "name", "erin", "password", "hunter2"); code != http.StatusOK || !strings.Contains(c.page, `name="code"`) {
		t.Fatalf("A's sign-in form posted to B: got %d\n%s", code, c.page)
	}
	if code := at(c, a).post("/signin", "to", "me", "code", totpNow(t)); code != http.StatusSeeOther || c.where != "/me" {
		t.Fatalf("B's code form posted to A: got %d to %q\n%s", code, c.where, c.page)
	}
	// The session A started, at B.
	if code := at(c, b).do("GET", "/me", nil); code != http.StatusOK || !strings.Contains(c.page, "Your recent logins") {
		t.Fatalf("GET /me at B with A's session: got %d\n%s", code, c.page)
	}
	kept := c.cookies["otpgate_session"]
	if kept == "" {
		t.Fatal("no session cookie")
	}
	// "This was not me" (a button beside each login listed; the form is
	// the page's), from B's page, posted to B.
	if code := at(c, b).post("/me", "action", "notme"); code != http.StatusOK || !strings.Contains(c.page, "locked") {
		t.Fatalf("this was not me at B: got %d\n%s", code, c.page)
	}
	// The administrator unlocks the account: the sessions stay ended.
	a.cli(t, "user", "unlock", "erin")
	waitFor(t, "B to see erin unlocked", func() bool { return !strings.Contains(squash(b.cli(t, "user", "show", "erin")), "locked: until") })
	for _, s := range []*server{a, b} {
		replay := newCookieClient(t, "http://"+s.web)
		replay.cookies["otpgate_session"] = kept
		if code := replay.do("GET", "/me", nil); code != http.StatusSeeOther || replay.where != "/signin?to=me" {
			t.Errorf("the session's cookie after this was not me, at %s: got %d to %q", s.web, code, replay.where)
		}
	}
}
