package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"layeh.com/radius"
)

// TestApprovalDisplayNameAndZone: the approval text and page name the
// gateway by its display_name, not its internal name, and tell the time in
// the tenant's time_zone, not the server's; a reload that changes either
// reaches both.
func TestApprovalDisplayNameAndZone(t *testing.T) {
	path := chromiumPath(t)
	port := freePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	config := fmt.Sprintf(`
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
web: {listen: "127.0.0.1:%d", public_url: "%s", password: local}
clients:
  - {name: rdgw, display_name: "Citrix Workspace", address: 127.0.0.1/32, secret: testing123, tenant: acme, profile: rdgateway, hold: 20s,
     client_ip_attribute: Tunnel-Client-Endpoint}
tenants:
  - {name: acme, mode: required, methods: [totp, sms], country_code: "31", time_zone: Europe/Amsterdam}
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
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "0612345678")

	hold := func(ip, name, zone string, approve bool) {
		t.Helper()
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		at := w.clock.Now()
		if at.In(loc).Format("15:04") == at.Local().Format("15:04") {
			t.Fatalf("the server's zone is %s's: the test cannot tell them apart", zone)
		}
		mark := w.logLen()
		held := sendHeld(t, w.addrs[0], "127.0.0.1", rdgRequest(t, "hank", "PC-"+ip, ip), 1, 20*time.Second)
		link := w.link(t, mark)
		if text := field(w.waitLog(t, mark, "console delivery"), "text"); !strings.HasPrefix(text, "Are you logging in to "+name+"? ") {
			t.Errorf("the approval text is %q, want it to name %s", text, name)
		}
		w.browse(t, chromedp.Navigate(link))
		details := w.text(t, "dl")
		for _, want := range []string{name, at.In(loc).Format("15:04:05")} {
			if !strings.Contains(details, want) {
				t.Errorf("the approval page does not show %q:\n%s", want, details)
			}
		}
		if strings.Contains(details, "rdgw") || strings.Contains(details, at.Local().Format("15:04:05")) {
			t.Errorf("the approval page shows the internal name or the server's time:\n%s", details)
		}
		w.axe(t, "approval page")
		w.press(t, map[bool]string{true: "#approve", false: "#deny"}[approve])
		want := map[bool]radius.Code{true: radius.CodeAccessAccept, false: radius.CodeAccessReject}[approve]
		if got := <-held; got.first == nil || got.first.Code != want {
			t.Fatalf("the held login got %v, want %v", codeName(got.first), want)
		}
	}
	hold("203.0.113.9", "Citrix Workspace", "Europe/Amsterdam", true)

	b, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.NewReplacer(`"Citrix Workspace"`, `"Remote Desktop"`, "Europe/Amsterdam", "America/New_York").Replace(string(b))
	if err := os.WriteFile(w.config, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	w.cli(t, "reload")
	hold("203.0.113.10", "Remote Desktop", "America/New_York", false)
}
