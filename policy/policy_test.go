package policy_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/sms"
	"github.com/otpgate/otpgate/store"
)

// totpSecret is RFC 6238's SHA-1 seed; every TOTP user in these tests has it.
const totpSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

const password = "correct horse battery staple"

var (
	start  = time.Unix(1111111111, 0).UTC()
	office = netip.MustParseAddr("198.51.100.20")
	home   = netip.MustParseAddr("203.0.113.7")
	ipX    = netip.MustParseAddr("192.0.2.10")
	ipY    = netip.MustParseAddr("192.0.2.20")
)

// recordingSender keeps every message it is asked to send.
type recordingSender struct {
	mu   sync.Mutex
	sent []sms.Message
}

func (s *recordingSender) Send(_ context.Context, m sms.Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	return "recorder", nil
}

func (s *recordingSender) messages() []sms.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sms.Message(nil), s.sent...)
}

// failingSender fails every delivery, like a provider that is down.
type failingSender struct {
	mu    sync.Mutex
	calls int
}

func (s *failingSender) Send(context.Context, sms.Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return "", errors.New("provider down")
}

// allChannels gives every channel the same sender.
func allChannels(s policy.Sender) map[string]policy.Sender {
	return map[string]policy.Sender{policy.MethodSMS: s, policy.MethodEmail: s, policy.MethodVoice: s}
}

// dutch are a tenant's own texts, to show that tenants' texts are used.
var dutch = func() policy.Messages {
	m := policy.DefaultMessages()
	m.OfficeIP = "Kantoor-IP toegestaan"
	m.CodeExpired = "Uw code is verlopen."
	m.WrongCode = "Verkeerde code, nog {tries} pogingen"
	m.TOTPPrompt = "Voer de code uit uw app in"
	return m
}()

func tenants() []policy.Tenant {
	base := func(name string, mode policy.Mode, methods ...string) policy.Tenant {
		return policy.Tenant{
			Name: name, Mode: mode, Methods: methods,
			CodeDigits: 6, CodeTTL: 3 * time.Minute, MaxAttempts: 3, ReconnectWindow: 10 * time.Minute,
			Messages: policy.DefaultMessages(),
		}
	}
	acme := base("acme", policy.ModeRequired, policy.MethodTOTP, policy.MethodSMS, policy.MethodEmail)
	acme.OfficeNetworks = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:ac::/48")}
	opt := base("opt", policy.ModeOptional, policy.MethodTOTP, policy.MethodSMS)
	opt.CodeDigits = 4
	open := base("open", policy.ModeOptional, policy.MethodTOTP)
	open.AllowUnknownUsers = true
	strictOpen := base("strictopen", policy.ModeRequired, policy.MethodTOTP)
	strictOpen.AllowUnknownUsers = true
	nl := base("nl", policy.ModeRequired, policy.MethodTOTP)
	nl.OfficeNetworks = acme.OfficeNetworks
	nl.ReconnectWindow = 0
	nl.Messages = dutch
	return []policy.Tenant{
		acme, opt, open, strictOpen, nl,
		base("off", policy.ModeOff, policy.MethodTOTP),
		base("totponly", policy.ModeRequired, policy.MethodTOTP),
	}
}

type fixture struct {
	t      testing.TB
	db     *store.DB
	key    *secret.Key
	now    time.Time
	sender *recordingSender
	engine *policy.Engine
	// decisions counts Decide calls made through decide, each of which
	// must leave exactly one audit entry.
	decisions int
}

// newFixture makes an engine over a real store with the test tenants and
// users, a clock at start and a recording sender. with may change the
// configuration before the engine is made.
func newFixture(t testing.TB, with ...func(*policy.Config)) *fixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "otpgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	key, err := secret.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, key: key, now: start, sender: &recordingSender{}}
	cfg := policy.Config{
		Store: db, Key: key, Tenants: tenants(), Senders: allChannels(f.sender),
		Now: func() time.Time { return f.now },
	}
	for _, w := range with {
		w(&cfg)
	}
	f.engine = policy.New(cfg)

	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f.addUsers(
		f.totpUser(store.User{Name: "alice", Tenant: "acme", Method: policy.MethodTOTP,
			HomeIPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}}),
		store.User{Name: "bob", Tenant: "acme", Method: policy.MethodSMS, Phone: "+31612345678"},
		store.User{Name: "carol", Tenant: "opt"},
		store.User{Name: "dave", Tenant: "acme"},
		store.User{Name: "erin", Tenant: "acme", TwoFactor: "off"},
		f.totpUser(store.User{Name: "frank", Tenant: "off", Method: policy.MethodTOTP}),
		f.totpUser(store.User{Name: "grace", Tenant: "acme", Method: policy.MethodTOTP, PasswordHash: string(hash)}),
		store.User{Name: "heidi", Tenant: "opt", TwoFactor: "on"},
		f.totpUser(store.User{Name: "ivan", Tenant: "nl", Method: policy.MethodTOTP}),
		f.totpUser(store.User{Name: "judy", Method: policy.MethodTOTP}), // no tenant of her own
		f.totpUser(store.User{Name: "ken", Tenant: "opt", Method: policy.MethodTOTP}),
		f.totpUser(store.User{Name: "mallory", Tenant: "gone", Method: policy.MethodTOTP}),
		f.totpUser(store.User{Name: "olivia", Tenant: "totponly", Method: policy.MethodSMS, Phone: "+31612345678"}),
		f.totpUser(store.User{Name: "peggy", Tenant: "acme"}), // no primary method chosen
		store.User{Name: "quinn", Tenant: "opt", Method: policy.MethodSMS, Phone: "+4915112345678"},
		store.User{Name: "rita", Tenant: "acme", Method: policy.MethodEmail, Email: "rita@example.com"},
	)
	return f
}

// totpUser enrols u with totpSecret, sealed as the engine expects.
func (f *fixture) totpUser(u store.User) store.User {
	f.t.Helper()
	sealed, err := f.key.Seal([]byte(totpSecret), "totp:"+store.NormalizeName(u.Name))
	if err != nil {
		f.t.Fatal(err)
	}
	u.TOTP = &store.TOTP{Sealed: sealed}
	return u
}

func (f *fixture) addUsers(us ...store.User) {
	f.t.Helper()
	err := f.db.Update(func(tx *store.Tx) error {
		for _, u := range us {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) advance(d time.Duration) { f.now = f.now.Add(d) }

// code is the TOTP code at the fixture's time.
func (f *fixture) code() string { return f.codeAt(f.now) }

func (f *fixture) codeAt(at time.Time) string {
	f.t.Helper()
	c, err := otp.TOTPCode(totpSecret, at)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// wrongCode is a 6-digit code that no step within otp.MaxDrift matches
// now, not even as one too far out to be accepted alone.
func (f *fixture) wrongCode() string {
	f.t.Helper()
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if _, ok := otp.MatchTOTPNear(totpSecret, c, f.now, 0, otp.MaxDrift+1); !ok {
			return c
		}
	}
	f.t.Fatal("no wrong code found")
	return ""
}

func login(user string, ip netip.Addr) policy.Request {
	return policy.Request{Client: "citrix", Tenant: "acme", FirstFactor: policy.FirstFactorGateway, User: user, IP: ip}
}

func answer(user, state, code string, ip netip.Addr) policy.Request {
	r := login(user, ip)
	r.State, r.Password = state, code
	return r
}

// decide runs Decide and checks that it left exactly one audit entry that
// matches the result.
func (f *fixture) decide(req policy.Request) policy.Result {
	f.t.Helper()
	res := f.engine.Decide(context.Background(), req)
	f.decisions++
	es := f.auditLog()
	if len(es) != f.decisions {
		f.t.Fatalf("got %d audit entries after %d decisions, want one each", len(es), f.decisions)
	}
	ip := ""
	if req.IP.IsValid() {
		ip = req.IP.Unmap().String()
	}
	want := store.Entry{
		Time: f.now, User: res.User, Tenant: res.Tenant, Client: req.Client, IP: ip,
		Decision: res.Decision.String(), Reason: res.Reason, Method: res.Method, Provider: res.Provider,
		Class: res.Class,
	}
	if (res.Class != "") != (res.Decision == policy.Accept) {
		f.t.Errorf("Class %q on %s, want one on every Accept and none else", res.Class, res.Decision)
	}
	got := es[0]
	if !got.Time.Equal(want.Time) {
		f.t.Errorf("audit time: got %v, want %v", got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if got != want {
		f.t.Errorf("audit entry: got %+v, want %+v", got, want)
	}
	return res
}

// auditLog flushes the audit queue and returns the log, newest first.
func (f *fixture) auditLog() []store.Entry {
	f.t.Helper()
	if err := f.db.Flush(); err != nil {
		f.t.Fatalf("flush audit queue: %v", err)
	}
	var es []store.Entry
	err := f.db.View(func(tx *store.Tx) error {
		var err error
		es, err = tx.AuditLog(0, nil)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return es
}

func (f *fixture) challenge(state string) (live.Challenge, error) {
	c, ok := f.engine.ChallengeOf(state)
	if !ok {
		return c, live.ErrNotFound
	}
	return c, nil
}

func (f *fixture) countChallenges() int { return f.engine.Challenges() }

// want is what a test expects of a Result. Message is compared exactly.
type want struct {
	decision policy.Decision
	reason   string
	message  string
	method   string
}

func check(t *testing.T, got policy.Result, w want) {
	t.Helper()
	if got.Decision != w.decision || got.Reason != w.reason {
		t.Errorf("got %s (%s), want %s (%s)", got.Decision, got.Reason, w.decision, w.reason)
	}
	if got.Message != w.message {
		t.Errorf("got message %q, want %q", got.Message, w.message)
	}
	if got.Method != w.method {
		t.Errorf("got method %q, want %q", got.Method, w.method)
	}
	if got.Decision == policy.Challenge && len(got.State) != 32 {
		t.Errorf("got State %q on a challenge, want 32 hexadecimal digits", got.State)
	}
	if got.Decision != policy.Challenge && got.State != "" {
		t.Errorf("got State %q on %s, want none", got.State, got.Decision)
	}
}

var msgs = policy.DefaultMessages()

func TestDecisionString(t *testing.T) {
	tests := []struct {
		d    policy.Decision
		want string
	}{
		{policy.Accept, "accept"},
		{policy.Reject, "reject"},
		{policy.Challenge, "challenge"},
		{policy.Decision(42), "reject"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("Decision(%d): got %q, want %q", int(tt.d), got, tt.want)
		}
	}
}

func TestDefaultMessages(t *testing.T) {
	all := msgs.All()
	if len(all) != len(policy.MessageKeys()) {
		t.Errorf("got %d messages, want %d", len(all), len(policy.MessageKeys()))
	}
	for k, v := range all {
		if v == "" {
			t.Errorf("default message %s is empty", k)
		}
	}
	if all["office_ip"] != "HQ IP Allowed!" || all["home_ip"] != "Home IP Allowed!" || all["reconnected"] != "Reconnected" {
		t.Errorf("got office_ip %q home_ip %q reconnected %q, want the provider's texts",
			all["office_ip"], all["home_ip"], all["reconnected"])
	}
}

func TestEngineTenant(t *testing.T) {
	ts := tenants()
	e := policy.New(policy.Config{Tenants: ts})
	ts[0].Mode = policy.ModeOff // the engine keeps its own copy
	got := e.Tenant("acme")
	if got == nil || got.Mode != policy.ModeRequired {
		t.Errorf("Tenant(acme): got %+v, want the required-mode tenant", got)
	}
	if got := e.Tenant("nowhere"); got != nil {
		t.Errorf("Tenant(nowhere): got %+v, want nil", got)
	}
}

func TestDecideAudit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r1 := f.engine.Decide(ctx, login("Alice", office))
	f.advance(time.Second)
	r2 := f.engine.Decide(ctx, login("alice", ipX))
	f.advance(time.Second)
	f.engine.Decide(ctx, answer("alice", r2.State, f.wrongCode(), ipX))
	f.advance(time.Second)
	f.engine.Decide(ctx, login("nobody", netip.Addr{}))
	r5 := f.engine.Decide(ctx, login("bob", netip.MustParseAddr("::ffff:192.0.2.10")))
	if r1.Decision != policy.Accept || r2.Decision != policy.Challenge || r5.Decision != policy.Challenge {
		t.Fatalf("got %s, %s, %s, want accept, challenge, challenge", r1.Decision, r2.Decision, r5.Decision)
	}

	got := f.auditLog()
	wantEntries := []store.Entry{
		{Time: start.Add(3 * time.Second), User: "bob", Tenant: "acme", Client: "citrix", IP: "192.0.2.10", Decision: "challenge", Reason: "challenge", Method: "sms", Provider: "recorder"},
		{Time: start.Add(3 * time.Second), User: "nobody", Tenant: "acme", Client: "citrix", Decision: "reject", Reason: "unknown_user"},
		{Time: start.Add(2 * time.Second), User: "alice", Tenant: "acme", Client: "citrix", IP: "192.0.2.10", Decision: "challenge", Reason: "wrong_code", Method: "totp"},
		{Time: start.Add(time.Second), User: "alice", Tenant: "acme", Client: "citrix", IP: "192.0.2.10", Decision: "challenge", Reason: "challenge", Method: "totp"},
		{Time: start, User: "alice", Tenant: "acme", Client: "citrix", IP: "198.51.100.20", Decision: "accept", Reason: "office_network"},
	}
	if len(got) != len(wantEntries) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(wantEntries), got)
	}
	for i := range got {
		g, w := got[i], wantEntries[i]
		if !g.Time.Equal(w.Time) {
			t.Errorf("entry %d: got time %v, want %v", i, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if w.Decision == "accept" && strings.HasPrefix(g.Class, "otpgate:") {
			w.Class = g.Class
		}
		if g != w {
			t.Errorf("entry %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestDecideStoreUnavailable(t *testing.T) {
	f := newFixture(t)
	state := f.decide(login("alice", ipX)).State
	if state == "" {
		t.Fatal("no challenge to answer")
	}
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []policy.Request{
		login("alice", ipX),
		answer("alice", state, "123456", ipX),
	}
	for _, req := range tests {
		t.Run(req.State, func(t *testing.T) {
			res := f.engine.Decide(context.Background(), req)
			check(t, res, want{policy.Reject, "error", msgs.Unavailable, ""})
			if res.User != "alice" {
				t.Errorf("got user %q, want alice", res.User)
			}
		})
	}
}

func TestDecideConcurrentReplay(t *testing.T) {
	// The same code sent for many challenges at once is accepted once: the
	// step is recorded in the same transaction that accepts it.
	f := newFixture(t)
	const n = 8
	states := make([]string, n)
	for i := range states {
		// Each from its own IP, or the second would reuse the first's challenge.
		res := f.decide(login("alice", netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)})))
		if res.Decision != policy.Challenge {
			t.Fatalf("login %d: got %s, want challenge", i, res.Decision)
		}
		states[i] = res.State
	}
	code := f.code()
	results := make([]policy.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = f.engine.Decide(context.Background(), answer("alice", states[i], code, netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)})))
		})
	}
	wg.Wait()
	accepted, replays := 0, 0
	for _, r := range results {
		switch {
		case r.Decision == policy.Accept && r.Reason == "totp_ok":
			accepted++
		case r.Decision == policy.Challenge && r.Reason == "totp_replay":
			replays++
		default:
			t.Errorf("got %s (%s), want an accept or a totp_replay challenge", r.Decision, r.Reason)
		}
	}
	if accepted != 1 || replays != n-1 {
		t.Errorf("got %d accepted and %d replays, want 1 and %d", accepted, replays, n-1)
	}
	if got := len(f.auditLog()); got != 2*n {
		t.Errorf("got %d audit entries, want %d", got, 2*n)
	}
}
