package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
)

// fakeEngine holds one approval and answers sign-ins by a table.
type fakeEngine struct {
	mu       sync.Mutex
	approval policy.Approval
	resolved []bool
	requests []policy.Request
}

func (f *fakeEngine) Decide(_ context.Context, req policy.Request) policy.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if req.State == "" {
		return policy.Result{Decision: policy.Challenge, State: "s1", Message: "Enter the code from your authenticator app"}
	}
	if req.Password == "123456" {
		return policy.Result{Decision: policy.Accept}
	}
	return policy.Result{Decision: policy.Challenge, State: "s2", Message: "Wrong code, 2 tries left"}
}

func (f *fakeEngine) Approval(token string) (policy.Approval, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.approval, token == f.approval.Token && len(f.resolved) == 0
}

func (f *fakeEngine) Resolve(token string, approve bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token != f.approval.Token || len(f.resolved) > 0 {
		return policy.ErrApprovalGone
	}
	f.resolved = append(f.resolved, approve)
	return nil
}

const tok = "00112233445566778899aabbccddeeff"

func newTestServer(t *testing.T) (*httptest.Server, *fakeEngine, *Server) {
	f := &fakeEngine{approval: policy.Approval{Token: tok, User: "hank", Client: "rdgw", Lang: "nl",
		IP: netip.MustParseAddr("203.0.113.9"), Machine: "PC-1", Created: time.Unix(0, 0), Expires: time.Unix(60, 0)}}
	s := &Server{Engine: f, Tenant: "acme", SignInsPerMinute: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, f, s
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, u string, form url.Values, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func TestApprovalPage(t *testing.T) {
	ts, f, _ := newTestServer(t)
	status, body := get(t, ts.URL+"/a/"+tok)
	if status != 200 || !strings.Contains(body, "Meldt u zich nu aan?") || !strings.Contains(body, "PC-1") || !strings.Contains(body, "203.0.113.9") {
		t.Fatalf("got %d, want the Dutch approval page with the details:\n%s", status, body)
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]

	// A post without the form's token, or from another site, decides nothing.
	if status, _ := post(t, ts.URL+"/a/"+tok, url.Values{"action": {"approve"}}, nil); status != http.StatusForbidden {
		t.Errorf("without csrf: got %d, want 403", status)
	}
	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}}
	if status, _ := post(t, ts.URL+"/a/"+tok, url.Values{"action": {"approve"}, "csrf": {csrf}}, cross); status != http.StatusForbidden {
		t.Errorf("cross-site: got %d, want 403", status)
	}
	other := http.Header{"Origin": {"https://evil.example"}}
	if status, _ := post(t, ts.URL+"/a/"+tok, url.Values{"action": {"approve"}, "csrf": {csrf}}, other); status != http.StatusForbidden {
		t.Errorf("other origin: got %d, want 403", status)
	}
	if len(f.resolved) != 0 {
		t.Fatalf("a forged post decided the login: %v", f.resolved)
	}

	status, body = post(t, ts.URL+"/a/"+tok, url.Values{"action": {"approve"}, "csrf": {csrf}}, nil)
	if status != 200 || !strings.Contains(body, "Goedgekeurd") || len(f.resolved) != 1 || !f.resolved[0] {
		t.Fatalf("approve: got %d %v:\n%s", status, f.resolved, body)
	}
	status, body = post(t, ts.URL+"/a/"+tok, url.Values{"action": {"approve"}, "csrf": {csrf}}, nil)
	if status != http.StatusGone {
		t.Errorf("second use: got %d, want 410:\n%s", status, body)
	}
	if status, _ := get(t, ts.URL+"/a/"+strings.Repeat("0", 32)); status != http.StatusGone {
		t.Errorf("an unknown link: got %d, want 410", status)
	}
}

func TestPagesHeaders(t *testing.T) {
	ts, _, _ := newTestServer(t)
	resp, err := http.Get(ts.URL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'", "Cache-Control": "no-store",
		"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
	} {
		if got := resp.Header.Get(k); !strings.Contains(got, want) {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
}

func TestSignIn(t *testing.T) {
	ts, f, _ := newTestServer(t)
	_, body := get(t, ts.URL+"/signin")
	csrf := csrfRE.FindStringSubmatch(body)[1]
	_, body = post(t, ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}}, http.Header{"X-Forwarded-For": {"198.51.100.4, 127.0.0.9"}})
	if !strings.Contains(body, "Enter the code from your authenticator app") || !strings.Contains(body, `name="state" value="s1"`) {
		t.Fatalf("got\n%s\nwant the prompt and the State", body)
	}
	_, body = post(t, ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}, "state": {"s1"}, "code": {"123456"}}, nil)
	if !strings.Contains(body, `id="result">Done.`) {
		t.Fatalf("got\n%s\nwant Done", body)
	}
	r := f.requests[0]
	if r.Client != "web" || r.Tenant != "acme" || !r.Preapprove || r.User != "hank" || r.IP != netip.MustParseAddr("198.51.100.4") {
		t.Errorf("got request %+v, want a web pre-approval for hank from the forwarded address", r)
	}
	// The sign-in page allows 3 attempts a minute per address; 127.0.0.1
	// has made one (the code), the forwarded address another.
	for i := 2; i <= 3; i++ {
		if status, _ := post(t, ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}}, nil); status != http.StatusOK {
			t.Fatalf("attempt %d: got %d, want 200", i, status)
		}
	}
	status, body := post(t, ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}}, nil)
	if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many attempts") {
		t.Errorf("fourth attempt: got %d, want 429:\n%s", status, body)
	}
	status, _ = post(t, ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}}, http.Header{"X-Forwarded-For": {"198.51.100.4"}})
	if status != http.StatusOK {
		t.Errorf("another address: got %d, want 200", status)
	}
}

func TestClientIP(t *testing.T) {
	s := &Server{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	tests := []struct {
		remote, xff, want string
	}{
		{"203.0.113.1:5000", "198.51.100.1", "203.0.113.1"},                     // not a proxy: its header is not believed
		{"10.0.0.2:5000", "198.51.100.1", "198.51.100.1"},                       // a proxy's client
		{"10.0.0.2:5000", "192.0.2.66, 198.51.100.1, 10.0.0.3", "198.51.100.1"}, // the last untrusted hop
		{"10.0.0.2:5000", "", "10.0.0.2"},
		{"[::ffff:203.0.113.1]:5000", "", "203.0.113.1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := s.clientIP(r).String(); got != tt.want {
			t.Errorf("%s with %q: got %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
}
