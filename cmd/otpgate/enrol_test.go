package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/otp"
)

// enrolWorld is otpgate with its web pages (web.password: local), a
// gateway that prompts, SMS by console, and a headless Chromium at 390 px.
type enrolWorld struct {
	*rdgWorld
}

// startEnrol starts it with web.password webPassword; tenant are more
// keys of the tenant acme, such as "resend_cooldown: 30s".
func startEnrol(t *testing.T, webPassword string, tenant ...string) *enrolWorld {
	path := chromiumPath(t)
	port := freePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	config := fmt.Sprintf(`
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
web: {listen: "127.0.0.1:%d", public_url: "%s", password: %s}
totp: {issuer: "Acme VPN"}
clients:
  - {name: gw, display_name: "Acme VPN", address: 127.0.0.1/32, secret: testing123, tenant: acme, client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, methods: [totp, sms], country_code: "31", reconnect_window: 8h,
     remember_ip_for: 8h, time_zone: Europe/Amsterdam, lockout: {failures: 5, window: 15m, duration: 1h}%s}
delivery: {allow_console: true, sms: [console]}
`, port, public, webPassword, strings.Join(append([]string{""}, tenant...), ", "))
	c := newClock()
	w := &rdgWorld{server: startServerAt(t, config, c.Now), clock: c, public: public}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(390, 844), chromedp.Flag("disable-gpu", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	w.browser = browser
	return &enrolWorld{w}
}

// addUser adds a user of acme with the password hunter2.
func (w *enrolWorld) addUser(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out, errOut strings.Builder
	if err := run(t.Context(), append([]string{"user", "add", name, "--tenant", "acme", "--password-stdin", "--config", w.config}, args...),
		strings.NewReader("hunter2\n"), &out, &errOut); err != nil {
		t.Fatalf("user add %s: %v %s", name, err, errOut.String())
	}
	return out.String()
}

var inviteLink = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/e/[0-9a-f]{32}`)

// sentLink is the invitation link in the newest console delivery after
// the first skip log lines.
func (w *enrolWorld) sentLink(t *testing.T, skip int) string {
	t.Helper()
	line := w.waitLog(t, skip, "console delivery")
	link := inviteLink.FindString(field(line, "text"))
	if link == "" {
		t.Fatalf("no invitation link in %q", line)
	}
	return link
}

// shot saves a screenshot of the page for docs/ when OTPGATE_SCREENSHOTS
// names a directory.
func (w *enrolWorld) shot(t *testing.T, name string) {
	t.Helper()
	if dir := os.Getenv("OTPGATE_SCREENSHOTS"); dir != "" {
		ctx, cancel := context.WithTimeout(w.browser, 20*time.Second)
		defer cancel()
		// Headless Chromium's window is at least 500 px wide: the page is
		// laid out at a phone's 390 px by emulation.
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scanQR reads the QR code on the page as a phone would: a screenshot of
// the image, decoded by zbarimg.
func (w *enrolWorld) scanQR(t *testing.T) string {
	t.Helper()
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zbarimg is not installed; .ci/run installs zbar-tools")
		}
		t.Skip("zbarimg is not installed (apt-get install zbar-tools)")
	}
	ctx, cancel := context.WithTimeout(w.browser, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("#qr")))
	if err != nil {
		t.Fatalf("screenshot of the QR code: %v", err)
	}
	file := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(file, png, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zbar, "-q", "--raw", file).Output()
	if err != nil {
		t.Fatalf("zbarimg could not read the QR code on the page: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func totpAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := otp.TOTPCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// get fetches a page without the browser's cookies: a stranger.
func get(t *testing.T, link string) (int, string) {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestEnrolByInvitation is a new employee's first two minutes: the link
// by SMS, the password, the QR code scanned, the first code, the recovery
// codes; then a login through a gateway with the new app, and the link
// refused ever after.
func TestEnrolByInvitation(t *testing.T) {
	w := startEnrol(t, "local")
	mark := w.logLen()
	out := w.addUser(t, "bob", "--phone", "0612345678", "--invite")
	if !strings.Contains(out, "Invitation for bob sent by sms (console)") {
		t.Fatalf("user add --invite said:\n%s", out)
	}
	link := w.sentLink(t, mark)
	if show := w.cli(t, "user", "show", "bob"); !regexp.MustCompile(`invitation:\s+open until `).MatchString(show) {
		t.Errorf("user show does not say the invitation is open:\n%s", show)
	}

	w.browse(t, chromedp.Navigate(link))
	if h := w.text(t, "h1"); h != "Set up your login codes" {
		t.Errorf("got heading %q", h)
	}
	w.axe(t, "password step")
	w.shot(t, "enrol-1-password")
	// A wrong password first: refused, nothing made.
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#password"), "wrong"))
	w.press(t, "#submit")
	if e := w.text(t, "#error"); !strings.Contains(e, "Wrong password") {
		t.Fatalf("a wrong password got %q", e)
	}
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#password"), "hunter2"))
	w.press(t, "#submit")
	w.axe(t, "choice")
	w.shot(t, "enrol-2-choose")
	w.press(t, "#app")
	w.axe(t, "QR code")
	w.shot(t, "enrol-3-qr")

	uri := w.scanQR(t)
	secret := secretOf(t, uri)
	if !strings.HasPrefix(uri, "otpauth://totp/Acme%20VPN:bob?") {
		t.Errorf("the QR code holds %q", uri)
	}
	ctx, cancel := context.WithTimeout(w.browser, 20*time.Second)
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#otpauth"), "href"))
	cancel()
	if err != nil || href.Value != uri {
		t.Errorf("the otpauth link is %q (%v), the QR code %q", href.Value, err, uri)
	}
	if key := strings.Join(strings.Fields(w.text(t, "#secret")), ""); key != secret {
		t.Errorf("the key to type is %q, the QR code's %q", key, secret)
	}
	if groups := strings.Fields(w.text(t, "#secret")); len(groups[0]) != 4 {
		t.Errorf("the key is not in groups of four: %q", groups)
	}
	// A code from a step far off is not taken.
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#code"), totpAt(t, secret, w.clock.Now().Add(-10*time.Minute))))
	w.press(t, "#submit")
	if e := w.text(t, "#error"); !strings.Contains(e, "Wrong code") {
		t.Fatalf("an old code got %q", e)
	}
	w.axe(t, "QR code with an error")
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#code"), totpAt(t, secret, w.clock.Now())))
	w.press(t, "#submit")
	codes := strings.Fields(w.text(t, "#recovery-codes"))
	if len(codes) != 10 || !regexp.MustCompile(`^[0-9]{4}-[0-9]{4}-[0-9]{4}$`).MatchString(codes[0]) {
		t.Fatalf("got recovery codes %q", codes)
	}
	w.axe(t, "recovery codes")
	w.shot(t, "enrol-4-recovery-codes")
	// "Continue" without the box ticked keeps the codes on screen (the
	// browser would stop it; the server does too).
	w.browse(t, chromedp.Click(chromedp.CSS("#saved")))
	w.press(t, "#submit")
	if r := w.text(t, "#result"); !strings.HasPrefix(r, "All set.") {
		t.Fatalf("got %q at the end", r)
	}
	w.axe(t, "done")
	w.shot(t, "enrol-5-done")

	show := w.cli(t, "user", "show", "bob")
	for _, want := range []string{"invitation:      none", "recovery codes:  10 left", "method:          totp"} {
		if !strings.Contains(show, want) {
			t.Errorf("user show lacks %q:\n%s", want, show)
		}
	}
	// The link works once.
	if code, body := get(t, link); code != http.StatusGone || !strings.Contains(body, "has been used or has expired") {
		t.Errorf("the link again: got %d\n%s", code, body)
	}
	// A login through the gateway with the new app.
	w.clock.Advance(30 * time.Second)
	ch := mustExchange(t, w.addrs[0], request{user: "bob", password: "x", callingStation: "198.51.100.7"})
	if ch.Code != radius.CodeAccessChallenge {
		t.Fatalf("login got %v, want Access-Challenge", codeName(ch))
	}
	if msg := rfc2865.ReplyMessage_GetString(ch); msg != "Enter the code from your authenticator app" {
		t.Errorf("the prompt is %q", msg)
	}
	acc := mustExchange(t, w.addrs[0], request{user: "bob", password: totpAt(t, secret, w.clock.Now()), callingStation: "198.51.100.7",
		state: string(rfc2865.State_Get(ch))})
	if acc.Code != radius.CodeAccessAccept {
		t.Fatalf("the new app's code got %v, want Access-Accept", codeName(acc))
	}
	// No secret or code in the log; the token only in the console
	// provider's line that stands for the SMS itself.
	logs := w.logText()
	for _, leak := range append([]string{secret}, codes...) {
		if strings.Contains(logs, leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
	token := link[strings.LastIndex(link, "/")+1:]
	if n := strings.Count(logs, token); n != 1 {
		t.Errorf("the token is in the log %d times, want once (the console SMS)", n)
	}
}

// code is the TOTP code of testSecret at the server's time.
func (w *enrolWorld) code(t *testing.T) string { return totpAt(t, testSecret, w.clock.Now()) }

// press clicks sel, which submits a form, and waits until the next page
// has loaded, so that what follows reads that page and not the last.
func (w *rdgWorld) press(t *testing.T, sel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(w.browser, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.dataset.left = "1", true`)); err != nil {
		t.Fatalf("browser: mark the page: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("browser: click %s: %v", sel, err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		next, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !document.documentElement.dataset.left`))
		if err == nil && next {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("browser: no next page after clicking %s", sel)
		case <-tick.C:
		}
	}
}
