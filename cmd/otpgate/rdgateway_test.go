package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
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
)

// freePort returns a loopback port nothing listens on, for a public_url
// that must be known before the server starts.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rdgWorld is otpgate with two RD Gateway clients (127.0.0.1 holds 20 s,
// 127.0.0.2 holds 1 s), its web page, and a headless Chromium.
type rdgWorld struct {
	*server
	clock   *clock
	browser context.Context
	public  string
}

func startRDG(t *testing.T) *rdgWorld {
	path := chromiumPath(t)
	port := freePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	config := fmt.Sprintf(`
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
web: {listen: "127.0.0.1:%d", public_url: "%s", password: local}
clients:
  - {name: rdgw, address: 127.0.0.1/32, secret: testing123, tenant: acme, profile: rdgateway, hold: 20s,
     client_ip_attribute: Tunnel-Client-Endpoint}
  - {name: rdgw-fast, address: 127.0.0.2/32, secret: testing123, tenant: acme, profile: rdgateway, hold: 1s}
tenants:
  - {name: acme, mode: required, methods: [totp, sms], country_code: "31", reconnect_window: 8h,
     preapproval_window: 5m}
delivery: {allow_console: true, sms: [console]}
`, port, public)
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
	return w
}

// chromiumPath finds Chromium; without it the test is skipped, except in
// CI, which installs it.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; .ci/run installs it")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// browse runs browser steps with a deadline.
func (w *rdgWorld) browse(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(w.browser, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// text returns the text of the first element sel selects.
func (w *rdgWorld) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(w.browser, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// rdgRequest is an Access-Request shaped like RD Gateway's through NPS:
// no User-Password, DOMAIN\user, NAS-Port-Type Virtual, a Proxy-State
// (NPS as proxy), the machine name, and the client's address.
func rdgRequest(t *testing.T, user, machine, ip string) []byte {
	vsa := append([]byte{50, byte(2 + len(machine))}, machine...)
	ms, err := radius.NewVendorSpecific(311, vsa)
	if err != nil {
		t.Fatal(err)
	}
	attrs := radius.Attributes{
		{Type: 61, Attribute: radius.Attribute([]byte{0, 0, 0, 5})}, // NAS-Port-Type Virtual
		{Type: 26, Attribute: ms},
	}
	if ip != "" {
		attrs = append(attrs, &radius.AVP{Type: 66, Attribute: radius.Attribute(ip)})
	}
	return encodeRequest(t, request{user: `ACME\` + user, proxyStates: [][]byte{[]byte("nps-1")}, attrs: attrs})
}

// held sends raw from the given loopback address and returns a channel
// with the first answer and a count of all answers within wait.
type answers struct {
	first *radius.Packet
	n     int
}

func sendHeld(t *testing.T, addr, from string, raw []byte, copies int, wait time.Duration) <-chan answers {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan answers, 1)
	for range copies { // the gateway retransmits while the login is held
		if _, err := conn.Write(raw); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		defer conn.Close()
		var got answers
		conn.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				break
			}
			got.n++
			if got.first == nil && radius.IsAuthenticResponse(buf[:n], raw, []byte("testing123")) {
				got.first, _ = radius.Parse(bytes.Clone(buf[:n]), []byte("testing123"))
				// After the answer, give a second one a moment to show up.
				conn.SetReadDeadline(time.Now().Add(time.Second))
			}
		}
		out <- got
	}()
	return out
}

var linkRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/a/[0-9a-f]{32}`)

// link waits for the approval link sent after the first skip log lines.
func (w *rdgWorld) link(t *testing.T, skip int) string {
	t.Helper()
	line := w.waitLog(t, skip, "console delivery")
	l := linkRE.FindString(line)
	if l == "" {
		t.Fatalf("no approval link in %q", line)
	}
	return l
}

func TestRDGatewayApproveInBrowser(t *testing.T) {
	w := startRDG(t)
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "0612345678")

	mark := w.logLen()
	raw := rdgRequest(t, "hank", "LAPTOP-HANK", "203.0.113.9")
	held := sendHeld(t, w.addrs[0], "127.0.0.1", raw, 2, 20*time.Second)
	link := w.link(t, mark)

	w.browse(t, chromedp.Navigate(link))
	heading := w.text(t, "h1")
	if heading != "Is this you logging in?" {
		t.Errorf("got heading %q", heading)
	}
	details := w.text(t, "dl")
	for _, want := range []string{"rdgw", "203.0.113.9", "LAPTOP-HANK"} {
		if !strings.Contains(details, want) {
			t.Errorf("the page does not show %q:\n%s", want, details)
		}
	}
	if dir := os.Getenv("OTPGATE_SCREENSHOTS"); dir != "" {
		w.screenshot(t, filepath.Join(dir, "approval-page.png"))
	}
	w.browse(t, chromedp.Click(chromedp.CSS("#approve")))
	result := w.text(t, "#result")
	if !strings.HasPrefix(result, "Approved.") {
		t.Errorf("got %q after Approve", result)
	}
	got := <-held
	if got.first == nil || got.first.Code != radius.CodeAccessAccept {
		t.Fatalf("the held request got %v, want Access-Accept", codeName(got.first))
	}
	if ps := got.first.Get(rfc2865.ProxyState_Type); string(ps) != "nps-1" {
		t.Errorf("got Proxy-State %q, want nps-1", ps)
	}
	if got.n != 1 {
		t.Errorf("got %d answers to a request sent twice during the hold, want 1", got.n)
	}

	// The link works once.
	w.browse(t, chromedp.Navigate(link))
	result = w.text(t, "#result")
	if !strings.Contains(result, "has been used or has expired") {
		t.Errorf("second use of the link: got %q", result)
	}
	// Same user, same address, recently approved: in at once.
	p := <-sendHeld(t, w.addrs[0], "127.0.0.1", rdgRequest(t, "hank", "LAPTOP-HANK", "203.0.113.9"), 1, 5*time.Second)
	if p.first == nil || p.first.Code != radius.CodeAccessAccept {
		t.Errorf("a login from the approved address got %v, want Access-Accept", codeName(p.first))
	}
}

func TestRDGatewayDenyAndTimeout(t *testing.T) {
	w := startRDG(t)
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "0612345678")

	mark := w.logLen()
	held := sendHeld(t, w.addrs[0], "127.0.0.1", rdgRequest(t, "hank", "PC-1", "203.0.113.9"), 1, 20*time.Second)
	link := w.link(t, mark)
	w.browse(t, chromedp.Navigate(link), chromedp.Click(chromedp.CSS("#deny")))
	result := w.text(t, "#result")
	if !strings.HasPrefix(result, "Denied.") {
		t.Errorf("got %q after Deny", result)
	}
	if got := <-held; got.first == nil || got.first.Code != radius.CodeAccessReject {
		t.Fatalf("a denied login got %v, want Access-Reject", codeName(got.first))
	}

	// Nobody answers: the 1 s hold of rdgw-fast runs out.
	mark = w.logLen()
	held = sendHeld(t, w.addrs[0], "127.0.0.2", rdgRequest(t, "hank", "PC-2", ""), 1, 10*time.Second)
	link = w.link(t, mark)
	if got := <-held; got.first == nil || got.first.Code != radius.CodeAccessReject {
		t.Fatalf("a login nobody approved got %v, want Access-Reject", codeName(got.first))
	}
	w.browse(t, chromedp.Navigate(link))
	result = w.text(t, "#result")
	if !strings.Contains(result, "has been used or has expired") {
		t.Errorf("the link of a timed-out login: got %q", result)
	}
}

func TestRDGatewayPreapproval(t *testing.T) {
	w := startRDG(t)
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"user", "add", "hank", "--tenant", "acme", "--phone", "0612345678", "--password-stdin", "--config", w.config},
		strings.NewReader("hunter2\n"), &out, &errOut); err != nil {
		t.Fatalf("user add: %v %s", err, errOut.String())
	}

	w.browse(t, chromedp.Navigate(w.public+"/signin"), chromedp.WaitVisible(chromedp.CSS("#password")))
	if dir := os.Getenv("OTPGATE_SCREENSHOTS"); dir != "" {
		w.screenshot(t, filepath.Join(dir, "sign-in-page.png"))
	}
	// A wrong password: refused, nothing sent.
	mark := w.logLen()
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#name"), "hank"), chromedp.SendKeys(chromedp.CSS("#password"), "hunter1"), chromedp.Click(chromedp.CSS("#submit")))
	if msg := w.text(t, "#error"); msg != "Wrong user name or password" {
		t.Errorf("a wrong password: got %q", msg)
	}
	if strings.Contains(strings.Join(strings.Split(w.logText(), "\n")[mark:], "\n"), "console delivery") {
		t.Errorf("a code was sent after a wrong password")
	}
	mark = w.logLen()
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#name"), "hank"), chromedp.SendKeys(chromedp.CSS("#password"), "hunter2"), chromedp.Click(chromedp.CSS("#submit")))
	prompt := w.text(t, "#prompt")
	if prompt != "Enter the code sent to +31 6*****78 (or type resend)" {
		t.Errorf("got prompt %q", prompt)
	}
	line := w.waitLog(t, mark, "console delivery")
	code := regexp.MustCompile(`\d{6}`).FindString(field(line, "text"))
	w.browse(t, chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Click(chromedp.CSS("#submit")))
	result := w.text(t, "#result")
	if !strings.HasPrefix(result, "Done.") {
		t.Fatalf("got %q after the code", result)
	}
	// Pre-approved: the RD Gateway login is accepted at once, no link.
	mark = w.logLen()
	got := <-sendHeld(t, w.addrs[0], "127.0.0.2", rdgRequest(t, "hank", "PC-9", ""), 1, 5*time.Second)
	if got.first == nil || got.first.Code != radius.CodeAccessAccept {
		t.Fatalf("a pre-approved login got %v, want Access-Accept", codeName(got.first))
	}
	// The window closes: held again, and nobody approves.
	w.clock.Advance(5*time.Minute + time.Second)
	got = <-sendHeld(t, w.addrs[0], "127.0.0.2", rdgRequest(t, "hank", "PC-10", ""), 1, 10*time.Second)
	if got.first == nil || got.first.Code != radius.CodeAccessReject {
		t.Fatalf("after the window got %v, want Access-Reject", codeName(got.first))
	}
	if !strings.Contains(w.waitLog(t, mark, "console delivery"), "/a/") {
		t.Errorf("no approval link was sent after the window closed")
	}
}

// screenshot saves the page as a PNG.
func (w *rdgWorld) screenshot(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(w.browser, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
