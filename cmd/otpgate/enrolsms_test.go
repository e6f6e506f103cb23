package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// deliveriesSince counts the console deliveries logged after the first
// skip lines.
func (w *enrolWorld) deliveriesSince(skip int) int {
	return strings.Count(strings.Join(strings.Split(w.logText(), "\n")[skip:], "\n"), "console delivery")
}

// TestEnrolBySMS is a new employee who prefers text messages: the number
// typed wrong, then one in a country the tenant does not send to, then
// their own; Resend too early, then in time (the old code void), until
// the tenant's send limit; the code proved, the number saved with the
// method sms, and a login through the gateway with a code sent there.
func TestEnrolBySMS(t *testing.T) {
	w := startEnrol(t, "local", "resend_cooldown: 30s", "limits: {sends_per_user_per_hour: 4}")
	w.addUser(t, "fay")
	link := inviteLinkOf(t, w.cli(t, "user", "invite", "fay", "--via", "print"))

	w.browse(t, chromedp.Navigate(link))
	// The link's end, in the tenant's time_zone (Europe/Amsterdam).
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	until := w.clock.Now().Add(72 * time.Hour)
	if body := w.text(t, "main"); !strings.Contains(body, "This link works until "+until.In(ams).Format("2006-01-02 15:04")+".") {
		t.Errorf("the page does not give the link's end in the tenant's zone (%s, the server's %s):\n%s",
			until.In(ams).Format("15:04"), until.Local().Format("15:04"), body)
	}
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#password"), "hunter2"))
	w.press(t, "#submit")
	w.axe(t, "choice")
	// The app first, then second thoughts on the QR code's page.
	w.press(t, "#app")
	w.press(t, "#sms")
	if l := w.text(t, `label[for="phone"]`); l != "Mobile number" {
		t.Errorf("the number's label is %q", l)
	}
	w.axe(t, "mobile number")
	w.shot(t, "enrol-sms-1-number")

	mark := w.logLen()
	for _, c := range []struct{ number, want, state string }{
		{"12-ab", "That is not a mobile number", "a number in the wrong format"},
		{"+32 470 12 34 56", "A code cannot be sent to you", "a number in a country the tenant does not send to"},
	} {
		w.browse(t, chromedp.SendKeys(chromedp.CSS("#phone"), c.number))
		w.press(t, "#submit")
		if e := w.text(t, "#error"); !strings.Contains(e, c.want) {
			t.Errorf("%s: got %q, want %q", c.state, e, c.want)
		}
		w.axe(t, c.state)
	}
	if n := w.deliveriesSince(mark); n != 0 {
		t.Fatalf("%d messages were sent to numbers refused", n)
	}

	w.browse(t, chromedp.SendKeys(chromedp.CSS("#phone"), "06 12345678"))
	w.press(t, "#submit")
	w.waitLog(t, mark, "console delivery")
	first := w.lastCode(t, "+31612345678")
	if p := w.text(t, "#prompt"); !strings.Contains(p, "+31 6*****78") {
		t.Errorf("the prompt is %q", p)
	}
	w.axe(t, "code sent")
	w.shot(t, "enrol-sms-2-code")

	// Resend before the tenant's resend_cooldown: nothing sent, told to wait.
	mark = w.logLen()
	w.press(t, "#resend")
	if body := w.text(t, "main"); !strings.Contains(body, "Please wait 30 seconds") {
		t.Errorf("an early Resend shows:\n%s", body)
	}
	if n := w.deliveriesSince(mark); n != 0 {
		t.Errorf("an early Resend sent %d messages", n)
	}
	w.axe(t, "Resend too early")

	// In time: a new code; the prompt's "type resend" works as the button does.
	resends := []func(){
		func() { w.press(t, "#resend") },
		func() {
			w.browse(t, chromedp.SendKeys(chromedp.CSS("#code"), "resend"))
			w.press(t, "#submit")
		},
		func() { w.press(t, "#resend") },
	}
	last := first
	for i, resend := range resends {
		w.clock.Advance(31 * time.Second)
		mark = w.logLen()
		resend()
		w.waitLog(t, mark, "console delivery")
		if body := w.text(t, "main"); !strings.Contains(body, "A new code was sent to +31 6*****78") {
			t.Errorf("resend %d shows:\n%s", i+1, body)
		}
		last = w.lastCode(t, "+31612345678")
	}
	w.axe(t, "code sent again")
	// The fifth send in the hour is over the tenant's limit of four.
	w.clock.Advance(31 * time.Second)
	mark = w.logLen()
	w.press(t, "#resend")
	if body := w.text(t, "main"); !strings.Contains(body, "Too many codes were requested") {
		t.Errorf("a Resend over the limit shows:\n%s", body)
	}
	if n := w.deliveriesSince(mark); n != 0 {
		t.Errorf("a Resend over the limit sent %d messages", n)
	}
	w.axe(t, "send limit reached")

	// The first code is void since the resend; the last one still works.
	if first != last {
		w.browse(t, chromedp.SendKeys(chromedp.CSS("#code"), first))
		w.press(t, "#submit")
		if e := w.text(t, "#error"); !strings.Contains(e, "Wrong code") {
			t.Errorf("the first code after a resend got %q", e)
		}
		w.axe(t, "code sent, wrong code")
	}
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#code"), last))
	w.press(t, "#submit")
	if codes := strings.Fields(w.text(t, "#recovery-codes")); len(codes) != 10 {
		t.Fatalf("got recovery codes %q", codes)
	}
	w.browse(t, chromedp.Click(chromedp.CSS("#saved")))
	w.press(t, "#submit")
	if r := w.text(t, "#result"); !strings.HasPrefix(r, "All set.") {
		t.Fatalf("got %q at the end", r)
	}
	show := w.cli(t, "user", "show", "fay")
	for _, want := range []string{`method:\s+sms`, `phone:\s+\+31612345678`, `invitation:\s+none`} {
		if !regexp.MustCompile(want).MatchString(show) {
			t.Errorf("user show lacks %s:\n%s", want, show)
		}
	}

	// A login through the gateway: the code goes to the number proved.
	w.clock.Advance(time.Hour)
	mark = w.logLen()
	ch := mustExchange(t, w.addrs[0], request{user: "fay", password: "x", callingStation: "198.51.100.7"})
	if ch.Code != radius.CodeAccessChallenge {
		t.Fatalf("login got %v, want Access-Challenge", codeName(ch))
	}
	w.waitLog(t, mark, "console delivery")
	acc := mustExchange(t, w.addrs[0], request{user: "fay", password: w.lastCode(t, "+31612345678"), callingStation: "198.51.100.7",
		state: string(rfc2865.State_Get(ch))})
	if acc.Code != radius.CodeAccessAccept {
		t.Fatalf("the SMS code got %v, want Access-Accept", codeName(acc))
	}
}

// TestLinkLeftUnproved: a new app's QR code shown and left without its
// first code (Back on the user's own page, three wrong codes on the
// enrolment page, or text messages chosen there) is forgotten: the
// gateway asks for the app the user has, or the SMS code, not for a code
// from the app never set up.
func TestLinkLeftUnproved(t *testing.T) {
	w := startEnrol(t, "local")
	w.addUser(t, "gus")
	w.cli(t, "user", "totp", "gus", "--secret", testSecret)
	login := func(who string) {
		t.Helper()
		w.clock.Advance(30 * time.Second)
		ch := mustExchange(t, w.addrs[0], request{user: who, password: "x", callingStation: "198.51.100.7"})
		if ch.Code != radius.CodeAccessChallenge {
			t.Fatalf("%s: login got %v, want Access-Challenge", who, codeName(ch))
		}
		code := w.code(t)
		if who != "gus" {
			code = w.lastCode(t, "+31612345678")
		}
		acc := mustExchange(t, w.addrs[0], request{user: who, password: code, callingStation: "198.51.100.7", state: string(rfc2865.State_Get(ch))})
		if acc.Code != radius.CodeAccessAccept {
			t.Fatalf("%s: the code of the method they have got %v (%q), want Access-Accept", who, codeName(acc), rfc2865.ReplyMessage_GetString(acc))
		}
	}

	c := newCookieClient(t, "http://"+w.web)
	c.do("GET", "/signin?to=me", nil)
	c.post("/signin", "to", "me", "name", "gus", "password", "hunter2")
	if code := c.post("/signin", "to", "me", "code", w.code(t)); code != http.StatusSeeOther {
		t.Fatalf("sign-in: got %d\n%s", code, c.page)
	}
	c.do("GET", "/me", nil)
	c.post("/me", "action", "link")
	w.clock.Advance(30 * time.Second)
	c.post("/me", "action", "code", "code", w.code(t))
	if !strings.Contains(c.page, `id="qr"`) {
		t.Fatalf("no QR code after the current code:\n%s", c.page)
	}
	c.post("/me", "action", "back")
	login("gus")

	// On the enrolment page: three wrong first codes, then SMS.
	w.addUser(t, "hal")
	link := inviteLinkOf(t, w.cli(t, "user", "invite", "hal", "--via", "print"))
	path := strings.TrimPrefix(link, w.public)
	e := newCookieClient(t, "http://"+w.web)
	e.do("GET", path, nil)
	e.post(path, "action", "password", "password", "hunter2")
	e.post(path, "action", "app")
	for range 3 {
		e.post(path, "action", "code", "code", "000000")
	}
	e.post(path, "action", "sms")
	e.post(path, "action", "phone", "phone", "0612345678")
	e.post(path, "action", "code", "code", w.lastCode(t, "+31612345678"))
	if !strings.Contains(e.page, `id="recovery-codes"`) {
		t.Fatalf("no recovery codes after the SMS code:\n%s", e.page)
	}
	login("hal")
}

// TestEnrolNoPasswordSendsNothing: with web.password none the link alone
// opens the page, so it offers no SMS and sends nothing, whatever is
// posted to it with a valid form token.
func TestEnrolNoPasswordSendsNothing(t *testing.T) {
	w := startEnrol(t, "none")
	w.addUser(t, "ivy", "--phone", "0612345678")
	w.addUser(t, "jon", "--phone", "0687654321")
	w.cli(t, "user", "totp", "jon", "--secret", testSecret)
	mark := w.logLen()

	link := inviteLinkOf(t, w.cli(t, "user", "invite", "ivy", "--via", "print"))
	path := strings.TrimPrefix(link, w.public)
	c := newCookieClient(t, "http://"+w.web)
	if code := c.do("GET", path, nil); code != http.StatusOK || !strings.Contains(c.page, `id="app"`) {
		t.Fatalf("GET the link: %d\n%s", code, c.page)
	}
	if strings.Contains(c.page, `id="sms"`) || strings.Contains(c.page, `name="password"`) {
		t.Errorf("the page offers SMS or asks a password it cannot check:\n%s", c.page)
	}
	for _, form := range [][]string{
		{"action", "sms"},
		{"action", "phone", "phone", "0611111111"},
		{"action", "resend"},
		{"action", "code", "code", "resend"},
		{"action", "code", "code", "sms"},
	} {
		if code := c.post(path, form...); code != http.StatusOK {
			t.Errorf("%q: got %d", form, code)
		}
		if strings.Contains(c.page, `id="phone"`) || strings.Contains(c.page, `id="sms"`) {
			t.Errorf("%q: the page asks for a number:\n%s", form, c.page)
		}
	}
	// The QR code's page offers no SMS either, nor does it turn to it.
	c.post(path, "action", "app")
	if !strings.Contains(c.page, `id="qr"`) || strings.Contains(c.page, `id="sms"`) {
		t.Errorf("the QR code's page:\n%s", c.page)
	}
	c.post(path, "action", "sms")
	c.post(path, "action", "phone", "phone", "0611111111")
	if strings.Contains(c.page, `id="phone"`) || strings.Contains(c.page, `id="prompt"`) {
		t.Errorf("SMS from the QR code's page:\n%s", c.page)
	}

	// Jon has an app: asked for its code; SMS words and Resend send nothing.
	link = inviteLinkOf(t, w.cli(t, "user", "invite", "jon", "--via", "print"))
	path = strings.TrimPrefix(link, w.public)
	j := newCookieClient(t, "http://"+w.web)
	j.do("GET", path, nil)
	if !strings.Contains(j.page, `id="prompt"`) {
		t.Fatalf("jon was not asked for his app's code:\n%s", j.page)
	}
	for _, form := range [][]string{
		{"action", "resend"},
		{"action", "code", "code", "sms"},
		{"action", "code", "code", "resend"},
	} {
		j.post(path, form...)
	}
	if n := w.deliveriesSince(mark); n != 0 {
		t.Errorf("%d messages were sent without a password", n)
	}
	if show := w.cli(t, "user", "show", "ivy"); !regexp.MustCompile(`phone:\s+\+31612345678`).MatchString(show) {
		t.Errorf("ivy's phone changed:\n%s", show)
	}
}
