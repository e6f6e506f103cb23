package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/directory/ldaptest"
	"github.com/otpgate/otpgate/otp"
)

// signInConfig is otpgate with its sign-in page (web.password filled in
// by the test), a gateway that prompts (gw) and an RD Gateway that cannot
// (rdgw, from 127.0.0.2, holding 1 s).
const signInConfig = `
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
web: {listen: "127.0.0.1:0", public_url: "https://otp.example.com", trusted_proxies: [127.0.0.1/32]%s}
clients:
  - {name: gw, address: 127.0.0.1/32, secret: testing123, tenant: acme, client_ip_attribute: Calling-Station-Id}
  - {name: rdgw, address: 127.0.0.2/32, secret: testing123, tenant: acme, profile: rdgateway, hold: 1s,
     client_ip_attribute: Tunnel-Client-Endpoint}
tenants:
  - {name: acme, mode: required, methods: [totp, sms], country_code: "31", office_networks: [192.0.2.0/24],
     reconnect_window: 8h, remember_ip_for: 1h, preapproval_window: 5m, max_attempts: 3,
     limits: {daily_budget: 3}, lockout: {failures: 5, window: 15m, duration: 1h}}
delivery: {allow_console: true, sms: [console]}
`

type signInWorld struct {
	*server
	clock *clock
}

// startSignIn starts otpgate with web.password set to password ("" leaves
// it out: the default).
func startSignIn(t *testing.T, password string) *signInWorld {
	extra := ""
	if password != "" {
		extra = ", password: " + password
	}
	c := newClock()
	return &signInWorld{server: startServerAt(t, fmt.Sprintf(signInConfig, extra), c.Now), clock: c}
}

// addUser adds a user of acme with the password hunter2 and the flags given.
func (w *signInWorld) addUser(t *testing.T, name string, args ...string) {
	t.Helper()
	var out, errOut strings.Builder
	if err := run(t.Context(), append([]string{"user", "add", name, "--tenant", "acme", "--password-stdin", "--config", w.config}, args...),
		strings.NewReader("hunter2\n"), &out, &errOut); err != nil {
		t.Fatalf("user add %s: %v %s", name, err, errOut.String())
	}
}

// code is the TOTP code of testSecret at the server's time.
func (w *signInWorld) code(t *testing.T) string {
	t.Helper()
	c, err := otp.TOTPCode(testSecret, w.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a code no step near the server's time accepts.
func (w *signInWorld) wrongCode() string {
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", n)
		if _, ok := otp.MatchTOTPNear(testSecret, c, w.clock.Now(), 0, 2*otp.MaxDrift); !ok {
			return c
		}
	}
}

// browser is one visitor of the sign-in page, with its own cookies, from
// the address from gives each request (through the trusted proxy).
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	from func() string
	page string // the last page
}

func (w *signInWorld) browser(t *testing.T, from func() string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: "http://" + w.web, c: &http.Client{Jar: jar}, from: from}
	b.do("GET", "/signin", nil)
	return b
}

// fixed is an address that does not change.
func fixed(ip string) func() string { return func() string { return ip } }

// rotating is an attacker's addresses: a new one each request.
func rotating() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("198.51.100.%d", n%250+1) }
}

func (b *browser) do(method, path string, form url.Values) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", b.from())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.page = string(body)
	return resp.StatusCode, b.page
}

var (
	csrfField  = regexp.MustCompile(`name="csrf" value="([0-9a-f]*)"`)
	nameField  = regexp.MustCompile(`name="name" value="([^"]*)"`)
	stateField = regexp.MustCompile(`name="state" value="([0-9A-Za-z_-]*)"`)
)

func hidden(re *regexp.Regexp, page string) string {
	if m := re.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

// submit posts the form on the last page: its token and hidden fields,
// and the fields given as name, value pairs.
func (b *browser) submit(kv ...string) (int, string) {
	b.t.Helper()
	form := url.Values{"csrf": {hidden(csrfField, b.page)}}
	if s := hidden(stateField, b.page); s != "" {
		form.Set("state", s)
		form.Set("name", hidden(nameField, b.page))
	}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	return b.do("POST", "/signin", form)
}

func (b *browser) state() string { return hidden(stateField, b.page) }

// blanked is a page with its tokens and the name typed taken out.
func blanked(page, name string) string {
	page = csrfField.ReplaceAllString(page, `name="csrf" value=""`)
	page = stateField.ReplaceAllString(page, `name="state" value=""`)
	return strings.ReplaceAll(page, `value="`+name+`"`, `value=""`)
}

// rdLogin is an RD Gateway login of user from 203.0.113.9 (not a trusted
// place) and the reason the server gave for its decision.
func (w *signInWorld) rdLogin(t *testing.T, user string) (*radius.Packet, string) {
	t.Helper()
	mark := w.logLen()
	got := <-sendHeld(t, w.addrs[0], "127.0.0.2", rdgRequest(t, user, "PC-"+user, "203.0.113.9"), 1, 5*time.Second)
	line := w.waitLog(t, mark, "client=rdgw")
	return got.first, field(line, "reason")
}

// deliveries counts the messages otpgate tried to send (sent, failed or
// refused by a limit), from its metrics.
func (w *signInWorld) deliveries(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + w.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	n := 0
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "otpgate_deliveries_total{") {
			var v int
			fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
			n += v
		}
	}
	return n
}

// TestSignInOfficeSkipsNothing: from an office address, a name alone
// pre-approves nobody, and neither does the right password: the user's
// next RD Gateway login is held as before (and times out here).
func TestSignInOfficeSkipsNothing(t *testing.T) {
	for _, password := range []string{"", "local"} {
		t.Run("password="+password, func(t *testing.T) {
			w := startSignIn(t, password)
			w.addUser(t, "hank", "--phone", "0612345678")
			w.cli(t, "user", "totp", "hank", "--secret", testSecret)

			b := w.browser(t, fixed("192.0.2.7")) // in acme's office network
			b.submit("name", "hank", "password", "hunter2")
			asked := !strings.Contains(b.page, "Done.") && b.state() != ""
			if !asked {
				t.Errorf("a sign-in from the office got\n%s\nwant a question for a code", b.page)
			}
			p, reason := w.rdLogin(t, "hank")
			if p == nil || p.Code != radius.CodeAccessReject || reason != "approval_timeout" {
				t.Fatalf("the RD Gateway login after it got %s (%s), want Access-Reject (approval_timeout): held, not pre-approved", codeName(p), reason)
			}
			if !asked {
				t.FailNow()
			}
			// A code proved on the page is what pre-approves.
			b.submit("code", w.code(t))
			if !strings.Contains(b.page, `id="result">Done.`) {
				t.Fatalf("the right code got\n%s", b.page)
			}
			p, reason = w.rdLogin(t, "hank")
			if p == nil || p.Code != radius.CodeAccessAccept || reason != "preapproved" {
				t.Fatalf("after a proved code got %s (%s), want Access-Accept (preapproved)", codeName(p), reason)
			}
		})
	}
}

// TestSignInSameForEveryName: until a first factor is proved, an unknown
// name, a user with no second factor, a TOTP user and an SMS user get the
// same page, and nothing is sent or counted against a limit.
func TestSignInSameForEveryName(t *testing.T) {
	for _, tc := range []struct{ password, typed string }{{"", ""}, {"local", "wrong"}} {
		t.Run("password="+tc.password, func(t *testing.T) {
			w := startSignIn(t, tc.password)
			w.addUser(t, "tina", "--method", "totp")
			w.cli(t, "user", "totp", "tina", "--secret", testSecret)
			w.addUser(t, "sam", "--phone", "0612345678")
			w.addUser(t, "nora")
			w.addUser(t, "sue", "--phone", "0612345679")
			mark := w.logLen()

			var first, firstName string
			names := []string{"ghost", "nora", "tina", "sam"}
			if tc.password == "" {
				names = append(names, "sam", "sam", "sam") // as many as the daily budget
			}
			for _, name := range names {
				b := w.browser(t, rotating())
				status, page := b.submit("name", name, "password", tc.typed)
				if status != http.StatusOK {
					t.Fatalf("%s: got status %d", name, status)
				}
				if first == "" {
					first, firstName = blanked(page, name), name
					if tc.password == "" && !strings.Contains(page, "Enter the code from your authenticator app, or a recovery code") {
						t.Errorf("got\n%s\nwant the question for an app or recovery code", page)
					}
					continue
				}
				if got := blanked(page, name); got != first {
					t.Errorf("%s got a page other than %s's:\n%s\n--- want\n%s", name, firstName, got, first)
				}
			}
			if l := w.logText(); strings.Contains(strings.Join(strings.Split(l, "\n")[mark:], "\n"), "console delivery") {
				t.Errorf("a code was sent to a name alone")
			}
			if n := w.deliveries(t); n != 0 {
				t.Errorf("got %d deliveries counted, want 0", n)
			}
			// The tenant's daily budget of 3 SMS is untouched: sue still
			// gets her code at a gateway.
			p := mustExchange(t, w.addrs[0], request{user: "sue", password: "pw", callingStation: "203.0.113.5"})
			expect(t, p, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****79 (or type resend)")
		})
	}
}

// TestSignInCannotLockOutGateways: a stranger who posts a name and wrong
// codes, with no password, locks the name out of the sign-in page for a
// while but never out of its logins at a gateway; and the page answers
// an unknown name the same way all along.
func TestSignInCannotLockOutGateways(t *testing.T) {
	w := startSignIn(t, "")
	w.addUser(t, "tina", "--method", "totp")
	w.cli(t, "user", "totp", "tina", "--secret", testSecret)
	wrong := w.wrongCode()

	pages := map[string][]string{}
	for _, name := range []string{"tina", "ghost"} {
		b := w.browser(t, rotating())
		for range 5 + 2 { // the lockout's failures, and two more
			if b.state() == "" {
				b.submit("name", name)
			}
			if b.state() != "" {
				b.submit("code", wrong)
			}
			pages[name] = append(pages[name], blanked(b.page, name))
		}
		b.submit("name", name)
		pages[name] = append(pages[name], blanked(b.page, name))
		if !strings.Contains(b.page, "Your account is locked") {
			t.Errorf("%s after 7 wrong codes got\n%s\nwant the page locked for the name", name, b.page)
		}
	}
	for i := range pages["tina"] {
		if pages["tina"][i] != pages["ghost"][i] {
			t.Errorf("step %d: tina's page differs from an unknown name's:\n%s\n--- unknown\n%s", i, pages["tina"][i], pages["ghost"][i])
		}
	}
	// At the gateway tina is asked for her code, and her code works.
	p := mustExchange(t, w.addrs[0], request{user: "tina", password: "pw", callingStation: "203.0.113.5"})
	expect(t, p, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	a := mustExchange(t, w.addrs[0], request{user: "tina", password: w.code(t), callingStation: "203.0.113.5", state: string(rfc2865.State_Get(p))})
	expect(t, a, radius.CodeAccessAccept, "")
}

// TestSignInCodeOnly: without a password, a TOTP code or a recovery code
// proved on the page pre-approves; a user with SMS only is sent nothing.
func TestSignInCodeOnly(t *testing.T) {
	w := startSignIn(t, "none")
	w.addUser(t, "tina", "--method", "totp")
	w.cli(t, "user", "totp", "tina", "--secret", testSecret)
	w.addUser(t, "sam", "--phone", "0612345678")
	codes := regexp.MustCompile(`\d{4}-\d{4}-\d{4}`).FindAllString(w.cli(t, "user", "recovery-codes", "sam"), -1)
	if len(codes) == 0 {
		t.Fatal("no recovery codes")
	}

	b := w.browser(t, fixed("203.0.113.20"))
	b.submit("name", "tina")
	b.submit("code", w.code(t))
	if !strings.Contains(b.page, `id="result">Done.`) {
		t.Fatalf("tina's code got\n%s", b.page)
	}
	if p, reason := w.rdLogin(t, "tina"); p == nil || p.Code != radius.CodeAccessAccept || reason != "preapproved" {
		t.Fatalf("tina's RD Gateway login got %s (%s), want Access-Accept (preapproved)", codeName(p), reason)
	}

	b = w.browser(t, fixed("203.0.113.21"))
	b.submit("name", "sam")
	b.submit("code", codes[0])
	if !strings.Contains(b.page, `id="result">Done.`) {
		t.Fatalf("sam's recovery code got\n%s", b.page)
	}
	if n := w.deliveries(t); n != 0 {
		t.Errorf("got %d deliveries, want none", n)
	}
}

// TestSignInPasswordFirst: with web.password: local the page checks the
// password before anything is sent, then asks for the user's code.
func TestSignInPasswordFirst(t *testing.T) {
	w := startSignIn(t, "local")
	w.addUser(t, "sam", "--phone", "0612345678")
	b := w.browser(t, fixed("203.0.113.30"))
	if !strings.Contains(b.page, `name="password" type="password"`) {
		t.Fatalf("got\n%s\nwant a password field", b.page)
	}
	b.submit("name", "sam", "password", "hunter1")
	if !strings.Contains(b.page, "Wrong user name or password") || w.deliveries(t) != 0 {
		t.Fatalf("a wrong password got\n%s\n(%d deliveries), want a plain refusal and nothing sent", b.page, w.deliveries(t))
	}
	mark := w.logLen()
	b.submit("name", "sam", "password", "hunter2")
	if !strings.Contains(b.page, "Enter the code sent to &#43;31 6*****78") {
		t.Fatalf("the right password got\n%s", b.page)
	}
	code := regexp.MustCompile(`\d{6}`).FindString(field(w.waitLog(t, mark, "console delivery"), "text"))
	b.submit("code", code)
	if !strings.Contains(b.page, `id="result">Done.`) {
		t.Fatalf("the sent code got\n%s", b.page)
	}
	if p, reason := w.rdLogin(t, "sam"); p == nil || p.Code != radius.CodeAccessAccept || reason != "preapproved" {
		t.Fatalf("sam's RD Gateway login got %s (%s), want Access-Accept (preapproved)", codeName(p), reason)
	}
}

// TestSignInLDAP: with web.password: ldap the page checks the password
// against the directory, as a gateway with password: ldap would, before
// anything is sent.
func TestSignInLDAP(t *testing.T) {
	dir := ldaptest.Start(t)
	c := newClock()
	w := &signInWorld{clock: c, server: startServerAt(t, fmt.Sprintf(signInConfig, ", password: ldap")+fmt.Sprintf(`
ldap:
  servers: ["%s"]
  timeout: 2s
  bind_dn: "uid={user},ou=people,dc=example,dc=com"
`, dir.URL), c.Now)}
	w.cli(t, "user", "add", "alice", "--tenant", "acme", "--phone", "+31612345678")

	b := w.browser(t, fixed("192.0.2.7")) // the office: it skips nothing
	b.submit("name", "alice", "password", "not-hers")
	wrong := blanked(b.page, "alice")
	b.submit("name", "mallory", "password", "right")
	if !strings.Contains(b.page, "Wrong user name or password") || blanked(b.page, "mallory") != wrong || w.deliveries(t) != 0 {
		t.Fatalf("wrong passwords got\n%s\n(%d deliveries), want the same refusal for both and nothing sent", b.page, w.deliveries(t))
	}
	mark := w.logLen()
	b.submit("name", "alice", "password", "right")
	if !strings.Contains(b.page, "Enter the code sent to &#43;31 6*****78") {
		t.Fatalf("the directory's password got\n%s", b.page)
	}
	code := regexp.MustCompile(`\d{6}`).FindString(field(w.waitLog(t, mark, "console delivery"), "text"))
	b.submit("code", code)
	if !strings.Contains(b.page, `id="result">Done.`) {
		t.Fatalf("the sent code got\n%s", b.page)
	}
	if p, reason := w.rdLogin(t, "alice"); p == nil || p.Code != radius.CodeAccessAccept || reason != "preapproved" {
		t.Fatalf("alice's RD Gateway login got %s (%s), want Access-Accept (preapproved)", codeName(p), reason)
	}
}

// TestSignInLockoutHoldsAgainstGuessesAtOnce: without a password, wrong
// codes posted all at once, each under a State of its own, are judged no
// more often than the page's lockout allows one after another (5): the
// count is taken before a code is judged, not after.
func TestSignInLockoutHoldsAgainstGuessesAtOnce(t *testing.T) {
	// A busy server: the clock yields to other requests whenever it is
	// read, so that the answers posted at once are decided side by side.
	c := newClock()
	var busy atomic.Bool
	now := func() time.Time {
		if busy.Load() {
			for range 10 {
				runtime.Gosched()
			}
		}
		return c.Now()
	}
	w := &signInWorld{server: startServerAt(t, fmt.Sprintf(signInConfig, ""), now), clock: c}
	w.addUser(t, "tina", "--method", "totp")
	w.cli(t, "user", "totp", "tina", "--secret", testSecret)
	wrong := w.wrongCode()

	const n = 40
	forms := make([]url.Values, n)
	browsers := make([]*browser, n)
	for i := range n {
		b := w.browser(t, fixed(fmt.Sprintf("198.51.100.%d", i+1)))
		b.submit("name", "tina")
		if b.state() == "" {
			t.Fatalf("asking for tina's code got\n%s", b.page)
		}
		forms[i] = url.Values{"csrf": {hidden(csrfField, b.page)}, "state": {b.state()}, "name": {"tina"}, "code": {wrong}}
		browsers[i] = b
	}
	pages := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range browsers {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", b.base+"/signin", strings.NewReader(forms[i].Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", b.from())
			<-start
			resp, err := b.c.Do(req)
			if err != nil {
				pages[i] = err.Error()
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			pages[i] = string(body)
		})
	}
	busy.Store(true)
	close(start)
	wg.Wait()
	busy.Store(false)
	judged := 0
	for _, p := range pages {
		if strings.Contains(p, "Wrong code") {
			judged++
		}
	}
	// The fifth wrong code locks the page for the name and says so.
	if judged > 4 {
		t.Errorf("%d of %d wrong codes posted at once were judged as wrong codes, want at most 4 before the name is locked out of the page", judged, n)
	}
}
