package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
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

// visitor is one browser: its own cookies, its own form tokens.
type visitor struct {
	t *testing.T
	c *http.Client
}

func newVisitor(t *testing.T, ts *httptest.Server) *visitor {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *ts.Client() // the server's transport, a jar of our own
	c.Jar = jar
	return &visitor{t: t, c: &c}
}

func (v *visitor) get(u string) (int, string) {
	v.t.Helper()
	resp, err := v.c.Get(u)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (v *visitor) post(u string, form url.Values, header http.Header) (int, string) {
	v.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vals := range header {
		req.Header[k] = vals
	}
	resp, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// csrfOf is the form token in a page.
func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form token in\n%s", body)
	}
	return m[1]
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func TestApprovalPage(t *testing.T) {
	ts, f, _ := newTestServer(t)
	v := newVisitor(t, ts)
	status, body := v.get(ts.URL + "/a/" + tok)
	if status != 200 || !strings.Contains(body, "Meldt u zich nu aan?") || !strings.Contains(body, "PC-1") || !strings.Contains(body, "203.0.113.9") {
		t.Fatalf("got %d, want the Dutch approval page with the details:\n%s", status, body)
	}
	csrf := csrfOf(t, body)

	// A post without the form's token, or from another site, decides nothing.
	if status, _ := v.post(ts.URL+"/a/"+tok, url.Values{"action": {"approve"}}, nil); status != http.StatusForbidden {
		t.Errorf("without csrf: got %d, want 403", status)
	}
	for _, h := range []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Origin": {"https://evil.example"}},
		{"Origin": {"null"}},
	} {
		if status, _ := v.post(ts.URL+"/a/"+tok, url.Values{"action": {"approve"}, "csrf": {csrf}}, h); status != http.StatusForbidden {
			t.Errorf("%v: got %d, want 403", h, status)
		}
	}
	if len(f.resolved) != 0 {
		t.Fatalf("a forged post decided the login: %v", f.resolved)
	}

	status, body = v.post(ts.URL+"/a/"+tok, url.Values{"action": {"approve"}, "csrf": {csrf}}, http.Header{"Origin": {ts.URL}})
	if status != 200 || !strings.Contains(body, "Goedgekeurd") || len(f.resolved) != 1 || !f.resolved[0] {
		t.Fatalf("approve: got %d %v:\n%s", status, f.resolved, body)
	}
	status, body = v.post(ts.URL+"/a/"+tok, url.Values{"action": {"approve"}, "csrf": {csrf}}, nil)
	if status != http.StatusGone {
		t.Errorf("second use: got %d, want 410:\n%s", status, body)
	}
	if status, _ := v.get(ts.URL + "/a/" + strings.Repeat("0", 32)); status != http.StatusGone {
		t.Errorf("an unknown link: got %d, want 410", status)
	}
}

// TestFormTokenIsPerVisitor: a form token is bound to its browser's
// cookie. An attacker who loads the page gets a token of their own, which
// does not pass with the victim's cookie, nor without one.
func TestFormTokenIsPerVisitor(t *testing.T) {
	ts, f, _ := newTestServer(t)
	attacker, victim := newVisitor(t, ts), newVisitor(t, ts)
	_, page := attacker.get(ts.URL + "/a/" + tok)
	stolen := csrfOf(t, page)
	_, page = victim.get(ts.URL + "/a/" + tok)
	own := csrfOf(t, page)
	if own == stolen {
		t.Fatalf("two visitors got the same form token %s", own)
	}
	if status, _ := victim.post(ts.URL+"/a/"+tok, url.Values{"action": {"approve"}, "csrf": {stolen}}, nil); status != http.StatusForbidden {
		t.Errorf("another visitor's token: got %d, want 403", status)
	}
	noCookie := &visitor{t: t, c: &http.Client{Transport: ts.Client().Transport}}
	if status, _ := noCookie.post(ts.URL+"/a/"+tok, url.Values{"action": {"approve"}, "csrf": {stolen}}, nil); status != http.StatusForbidden {
		t.Errorf("a token without its cookie: got %d, want 403", status)
	}
	_, page = victim.get(ts.URL + "/signin")
	if status, _ := victim.post(ts.URL+"/signin", url.Values{"csrf": {csrfOf(t, page)}, "name": {"hank"}}, http.Header{"Origin": {"null"}}); status != http.StatusForbidden {
		t.Errorf("sign-in from Origin null: got %d, want 403", status)
	}
	if len(f.resolved) != 0 || len(f.requests) != 0 {
		t.Fatalf("a refused post reached the engine: %v %v", f.resolved, f.requests)
	}
	if status, _ := victim.post(ts.URL+"/a/"+tok, url.Values{"action": {"deny"}, "csrf": {own}}, nil); status != http.StatusOK || len(f.resolved) != 1 {
		t.Errorf("the visitor's own token: got %d, %v; want 200 and the login decided", status, f.resolved)
	}
}

func TestPagesHeaders(t *testing.T) {
	f := &fakeEngine{}
	plain := httptest.NewServer((&Server{Engine: f}).Handler())
	defer plain.Close()
	tls := httptest.NewTLSServer((&Server{Engine: f}).Handler())
	defer tls.Close()
	for _, ts := range []*httptest.Server{plain, tls} {
		resp, err := ts.Client().Get(ts.URL + "/signin")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for k, want := range map[string]string{
			"Content-Security-Policy": "default-src 'none'", "Cache-Control": "no-store",
			"X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
		} {
			if got := resp.Header.Get(k); !strings.Contains(got, want) {
				t.Errorf("%s: got %q, want %q", k, got, want)
			}
		}
		hsts := resp.Header.Get("Strict-Transport-Security")
		cookie := resp.Header.Get("Set-Cookie")
		if ts == tls {
			if hsts != "max-age=31536000" {
				t.Errorf("over TLS: got Strict-Transport-Security %q, want max-age=31536000", hsts)
			}
			if !strings.Contains(cookie, "Secure") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
				t.Errorf("over TLS: got cookie %q, want Secure, HttpOnly, SameSite=Strict", cookie)
			}
		} else if hsts != "" {
			t.Errorf("plain HTTP: got Strict-Transport-Security %q, want none", hsts)
		}
	}
}

func TestSignIn(t *testing.T) {
	ts, f, s := newTestServer(t)
	s.FirstFactor = policy.FirstFactorLDAP
	v := newVisitor(t, ts)
	_, body := v.get(ts.URL + "/signin")
	if !strings.Contains(body, `name="password" type="password"`) {
		t.Fatalf("got\n%s\nwant a password field", body)
	}
	csrf := csrfOf(t, body)
	_, body = v.post(ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}, "password": {"pw"}}, http.Header{"X-Forwarded-For": {"198.51.100.4, 127.0.0.9"}})
	if !strings.Contains(body, "Enter the code from your authenticator app") || !strings.Contains(body, `name="state" value="s1"`) {
		t.Fatalf("got\n%s\nwant the prompt and the State", body)
	}
	_, body = v.post(ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}, "state": {"s1"}, "code": {"123456"}}, nil)
	if !strings.Contains(body, `id="result">Done.`) {
		t.Fatalf("got\n%s\nwant Done", body)
	}
	r := f.requests[0]
	if r.Client != "web" || r.Tenant != "acme" || !r.SignIn || r.User != "hank" || r.Password != "pw" ||
		r.FirstFactor != policy.FirstFactorLDAP || r.IP != netip.MustParseAddr("198.51.100.4") {
		t.Errorf("got request %+v, want a web sign-in for hank with the password, from the forwarded address", r)
	}
	if r := f.requests[1]; r.Password != "123456" || r.State != "s1" || !r.SignIn {
		t.Errorf("got request %+v, want the code as the answer", r)
	}
	// The sign-in page allows 3 attempts a minute per address; 127.0.0.1
	// has made one (the code), the forwarded address another.
	for i := 2; i <= 3; i++ {
		if status, _ := v.post(ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}}, nil); status != http.StatusOK {
			t.Fatalf("attempt %d: got %d, want 200", i, status)
		}
	}
	status, body := v.post(ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}}, nil)
	if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many attempts") {
		t.Errorf("fourth attempt: got %d, want 429:\n%s", status, body)
	}
	status, _ = v.post(ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}}, http.Header{"X-Forwarded-For": {"198.51.100.4"}})
	if status != http.StatusOK {
		t.Errorf("another address: got %d, want 200", status)
	}
}

func TestSignInWithoutAPasswordSendsNone(t *testing.T) {
	for _, ff := range []string{"", policy.FirstFactorNone, policy.FirstFactorGateway, "bogus"} {
		ts, f, s := newTestServer(t)
		s.FirstFactor = ff
		v := newVisitor(t, ts)
		_, body := v.get(ts.URL + "/signin")
		if strings.Contains(body, `name="password"`) {
			t.Errorf("first factor %q: the form asks for a password it cannot check", ff)
		}
		v.post(ts.URL+"/signin", url.Values{"csrf": {csrfOf(t, body)}, "name": {"hank"}, "password": {"pw"}}, nil)
		if r := f.requests[0]; r.FirstFactor != policy.FirstFactorNone || !r.SignIn {
			t.Errorf("first factor %q: got request %+v, want FirstFactorNone", ff, r)
		}
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

// TestSignInLimitPer64: an IPv6 host holds a /64 whole, so the sign-in
// page's limit of attempts per address counts the /64: a new address in
// it for each post does not get round the limit.
func TestSignInLimitPer64(t *testing.T) {
	ts, _, _ := newTestServer(t)
	v := newVisitor(t, ts)
	_, body := v.get(ts.URL + "/signin")
	csrf := csrfOf(t, body)
	post := func(from string) int {
		status, _ := v.post(ts.URL+"/signin", url.Values{"csrf": {csrf}, "name": {"hank"}}, http.Header{"X-Forwarded-For": {from}})
		return status
	}
	for i := 1; i <= 3; i++ {
		if status := post(fmt.Sprintf("2001:db8:1:2::%x", i)); status != http.StatusOK {
			t.Fatalf("attempt %d: got %d, want 200", i, status)
		}
	}
	if status := post("2001:db8:1:2:ffff:ffff:ffff:ffff"); status != http.StatusTooManyRequests {
		t.Errorf("fourth attempt from the same /64: got %d, want 429", status)
	}
	if status := post("2001:db8:1:3::1"); status != http.StatusOK {
		t.Errorf("another /64: got %d, want 200", status)
	}
}
