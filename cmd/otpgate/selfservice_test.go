package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// cookieClient is a browser without a screen: it keeps every cookie the
// server sets (also Secure ones, over plain HTTP on loopback, as browsers
// do there) and does not follow redirects.
type cookieClient struct {
	t       *testing.T
	base    string
	cookies map[string]string
	page    string
	where   string // Location of the last redirect
}

func newCookieClient(t *testing.T, base string) *cookieClient {
	return &cookieClient{t: t, base: base, cookies: map[string]string{}}
}

func (c *cookieClient) do(method, path string, form url.Values) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	body, _ := io.ReadAll(resp.Body)
	c.page, c.where = string(body), resp.Header.Get("Location")
	return resp.StatusCode
}

// post submits the form on the last page with its CSRF token and the
// fields given as name, value pairs.
func (c *cookieClient) post(path string, kv ...string) int {
	c.t.Helper()
	form := url.Values{"csrf": {hidden(csrfField, c.page)}}
	if s := hidden(stateField, c.page); s != "" {
		form.Set("state", s)
		form.Set("name", hidden(nameField, c.page))
	}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	return c.do("POST", path, form)
}

// inviteLinkOf is the link "user invite --via print" printed.
func inviteLinkOf(t *testing.T, out string) string {
	t.Helper()
	link := inviteLink.FindString(out)
	if link == "" {
		t.Fatalf("no link in:\n%s", out)
	}
	return link
}

// TestEnrolAttacks tries what a stranger with, or without, a link would.
func TestEnrolAttacks(t *testing.T) {
	w := startEnrol(t, "local")
	w.addUser(t, "carol")
	w.cli(t, "user", "totp", "carol", "--secret", testSecret)
	w.addUser(t, "dave")
	base := "http://" + w.web

	// A guessed token, and one of the wrong length.
	for _, path := range []string{"/e/00112233445566778899aabbccddeeff", "/e/x", "/e/" + strings.Repeat("a", 64)} {
		if code, _ := get(t, base+path); code != http.StatusGone && code != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 410", path, code)
		}
	}
	// An expired link.
	link := inviteLinkOf(t, w.cli(t, "user", "invite", "dave", "--via", "print", "--valid", "10m"))
	w.clock.Advance(11 * time.Minute)
	if code, _ := get(t, link); code != http.StatusGone {
		t.Errorf("an expired link: got %d, want 410", code)
	}
	// user reset voids a link.
	link = inviteLinkOf(t, w.cli(t, "user", "invite", "dave", "--via", "print"))
	w.cli(t, "user", "reset", "dave")
	if code, _ := get(t, link); code != http.StatusGone {
		t.Errorf("a link after user reset: got %d, want 410", code)
	}

	// Carol has an app: her link, with her password, asks for a code from
	// it before anything else; no QR code, no secret.
	link = inviteLinkOf(t, w.cli(t, "user", "invite", "carol", "--via", "print"))
	path := strings.TrimPrefix(link, w.public)
	c := newCookieClient(t, base)
	if code := c.do("GET", path, nil); code != http.StatusOK {
		t.Fatalf("GET the link: %d", code)
	}
	// Posts without the form's token, or with another browser's, are refused.
	if code := c.do("POST", path, url.Values{"action": {"password"}, "password": {"hunter2"}}); code != http.StatusForbidden {
		t.Errorf("a post without a CSRF token: got %d, want 403", code)
	}
	c.do("GET", path, nil)
	other := newCookieClient(t, base)
	other.do("GET", path, nil)
	other.page = c.page // carol's form, posted from another browser
	if code := other.post(path, "action", "password", "password", "hunter2"); code != http.StatusForbidden {
		t.Errorf("another browser's token: got %d, want 403", code)
	}
	c.post(path, "action", "password", "password", "hunter2")
	if !strings.Contains(c.page, `id="prompt"`) || strings.Contains(c.page, `id="qr"`) {
		t.Fatalf("carol, who has an app, was not asked for its code first:\n%s", c.page)
	}
	// Skipping ahead is not possible.
	c.post(path, "action", "app")
	if strings.Contains(c.page, `id="qr"`) || strings.Contains(c.page, "otpauth://") {
		t.Fatalf("a new secret was shown without the current code:\n%s", c.page)
	}
	c.post(path, "action", "code", "code", w.code(t))
	c.post(path, "action", "app")
	if !strings.Contains(c.page, `id="qr"`) {
		t.Fatalf("after the current code, no QR code:\n%s", c.page)
	}

	// Dave's link: wrong passwords void it; another user's password is a wrong one.
	link = inviteLinkOf(t, w.cli(t, "user", "invite", "dave", "--via", "print"))
	path = strings.TrimPrefix(link, w.public)
	d := newCookieClient(t, base)
	d.do("GET", path, nil)
	for i := range 5 {
		if code := d.post(path, "action", "password", "password", "not-"+strings.Repeat("x", i)); i < 4 && code != http.StatusOK {
			t.Fatalf("wrong password %d: got %d", i+1, code)
		}
	}
	if code, _ := get(t, link); code != http.StatusGone {
		t.Errorf("after five wrong passwords the link got %d, want 410", code)
	}
	if show := w.cli(t, "user", "show", "dave"); !strings.Contains(show, "invitation:      none") {
		t.Errorf("user show after the link was voided:\n%s", show)
	}
	// The admin's acts are in the audit log.
	if audit := w.cli(t, "audit", "--user", "dave"); !strings.Contains(audit, "user invite invite by") {
		t.Errorf("no audit entry for user invite:\n%s", audit)
	}
	// /me without a session goes to the sign-in.
	anon := newCookieClient(t, base)
	if code := anon.do("GET", "/me", nil); code != http.StatusSeeOther || anon.where != "/signin?to=me" {
		t.Errorf("/me without a session: got %d to %q", code, anon.where)
	}
	if code := anon.do("POST", "/me", url.Values{"action": {"codes"}}); code == http.StatusOK {
		t.Errorf("POST /me without a session or token: got %d", code)
	}
}

// TestAccountPage is a user's own page: signed in with password and code,
// new recovery codes, a remembered place forgotten, the last logins, and
// "this was not me", after which the account is locked and the session's
// cookie is worth nothing.
func TestAccountPage(t *testing.T) {
	w := startEnrol(t, "local")
	w.addUser(t, "erin")
	w.cli(t, "user", "totp", "erin", "--secret", testSecret)
	// A login through the gateway from home: remembered.
	ch := mustExchange(t, w.addrs[0], request{user: "erin", password: "x", callingStation: "198.51.100.7"})
	acc := mustExchange(t, w.addrs[0], request{user: "erin", password: w.code(t), callingStation: "198.51.100.7", state: string(rfc2865.State_Get(ch))})
	if acc.Code != radius.CodeAccessAccept {
		t.Fatalf("login got %v", codeName(acc))
	}
	w.clock.Advance(30 * time.Second)

	w.browse(t, chromedp.Navigate(w.public+"/me"))
	if h := w.text(t, "h1"); h != "Your account" {
		t.Fatalf("/me without a session shows %q", h)
	}
	w.axe(t, "account sign-in")
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#name"), "erin"), chromedp.SendKeys(chromedp.CSS("#password"), "hunter2"))
	w.press(t, "#submit")
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#code"), w.code(t)))
	w.press(t, "#submit")
	if p := w.text(t, "#places"); !strings.Contains(p, "198.51.100.7") {
		t.Fatalf("the remembered place is not listed: %q", p)
	}
	logins := w.text(t, "#logins")
	if !strings.Contains(logins, "Acme VPN") || !strings.Contains(logins, "198.51.100.7") {
		t.Errorf("the logins do not show the gateway's display name and place: %q", logins)
	}
	w.axe(t, "account page")
	w.shot(t, "account-1-overview")

	w.press(t, "#codes")
	// New recovery codes need the current second factor, as a new app does.
	w.clock.Advance(30 * time.Second)
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#code"), w.code(t)))
	w.press(t, "#submit")
	codes := strings.Fields(w.text(t, "#recovery-codes"))
	if len(codes) != 10 {
		t.Fatalf("got %d recovery codes", len(codes))
	}
	w.axe(t, "account recovery codes")
	w.browse(t, chromedp.Click(chromedp.CSS("#saved")))
	w.press(t, "#submit")
	w.press(t, "#back")
	if got := w.text(t, "#recovery-left"); !strings.Contains(got, "10") {
		t.Errorf("after new codes the page says %q", got)
	}
	w.browse(t)
	w.press(t, ".forget")
	if e := w.text(t, "#error"); !strings.Contains(e, "forgotten") {
		t.Errorf("after Forget: %q", e)
	}
	if show := w.cli(t, "user", "show", "erin"); strings.Contains(show, "198.51.100.7 until") {
		t.Errorf("user show after forget:\n%s", show)
	}
	// Forgotten: the gateway asks for a code from there again.
	if ch := mustExchange(t, w.addrs[0], request{user: "erin", password: "x", callingStation: "198.51.100.7"}); ch.Code != radius.CodeAccessChallenge {
		t.Errorf("from the forgotten place: got %v, want Access-Challenge", codeName(ch))
	}

	// A second sign-in without a screen, whose cookie is kept.
	c := newCookieClient(t, "http://"+w.web)
	c.do("GET", "/signin?to=me", nil)
	c.post("/signin", "to", "me", "name", "erin", "password", "hunter2")
	w.clock.Advance(30 * time.Second)
	if code := c.post("/signin", "to", "me", "code", w.code(t)); code != http.StatusSeeOther || c.where != "/me" {
		t.Fatalf("the second sign-in: got %d to %q\n%s", code, c.where, c.page)
	}
	stolen := c.cookies["otpgate_session"]
	if code := c.do("GET", "/me", nil); code != http.StatusOK {
		t.Fatalf("GET /me signed in: %d", code)
	}

	// "This was not me".
	mark := w.logLen()
	w.press(t, ".notme")
	if r := w.text(t, "#result"); !strings.Contains(r, "locked") {
		t.Fatalf("after this was not me: %q", r)
	}
	w.axe(t, "locked")
	if line := w.waitLog(t, mark, "was not theirs"); !strings.Contains(line, "level=WARN") {
		t.Errorf("not a warning: %s", line)
	}
	if show := w.cli(t, "user", "show", "erin"); !regexp.MustCompile(`locked:\s+until`).MatchString(show) {
		t.Errorf("user show after this was not me:\n%s", show)
	}
	if audit := w.cli(t, "audit", "--user", "erin"); !strings.Contains(audit, "not_me") {
		t.Errorf("no audit entry:\n%s", audit)
	}
	c.cookies["otpgate_session"] = stolen
	if code := c.do("GET", "/me", nil); code != http.StatusSeeOther {
		t.Errorf("the other session's cookie after this was not me: got %d, want a redirect to sign in", code)
	}
	if rej := mustExchange(t, w.addrs[0], request{user: "erin", password: "x", callingStation: "198.51.100.7"}); rej.Code != radius.CodeAccessReject {
		t.Errorf("a locked account's login: got %v", codeName(rej))
	}
	w.cli(t, "user", "unlock", "erin")
}
