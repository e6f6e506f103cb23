package policy_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// withTenantChange changes tenant name before the engine is made.
func withTenantChange(name string, change func(*policy.Tenant)) func(*policy.Config) {
	return func(c *policy.Config) {
		for i := range c.Tenants {
			if c.Tenants[i].Name == name {
				change(&c.Tenants[i])
			}
		}
	}
}

// sam has SMS with e-mail as backup; tina has SMS with TOTP as backup.
func (f *fixture) addBackupUsers() {
	f.t.Helper()
	f.addUsers(
		store.User{Name: "sam", Tenant: "acme", Method: policy.MethodSMS, BackupMethod: policy.MethodEmail,
			Phone: "+31687654321", Email: "sam@example.com"},
		f.totpUser(store.User{Name: "tina", Tenant: "acme", Method: policy.MethodSMS, BackupMethod: policy.MethodTOTP,
			Phone: "+31611112222"}),
	)
}

func TestBackupMethodWhenPrimaryFails(t *testing.T) {
	rec := &recordingSender{}
	f := newFixture(t, func(c *policy.Config) {
		c.Senders = map[string]policy.Sender{policy.MethodSMS: &failingSender{}, policy.MethodEmail: rec}
	})
	f.addBackupUsers()

	res := f.decide(login("sam", ipX))
	check(t, res, want{policy.Challenge, "challenge_backup", "Sending by SMS failed. Enter the code sent to s***@example.com (or type resend)", "email"})
	if res.Provider != "recorder" {
		t.Errorf("got provider %q, want recorder", res.Provider)
	}
	sent := rec.messages()
	if len(sent) != 1 || sent[0].To != "sam@example.com" {
		t.Fatalf("got %+v, want one e-mail to sam", sent)
	}
	check(t, f.decide(answer("sam", res.State, sent[0].Code, ipX)), want{policy.Accept, "code_ok", "", "email"})

	res = f.decide(login("tina", ipX))
	check(t, res, want{policy.Challenge, "challenge_backup", "Sending by SMS failed. " + msgs.TOTPPrompt, "totp"})
	check(t, f.decide(answer("tina", res.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
}

func TestResendCooldown(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) { t.ResendCooldown = 30 * time.Second }))
	first := f.decide(login("bob", ipX))
	codeA := f.sender.messages()[0].Code

	f.advance(10 * time.Second)
	wait := f.decide(answer("bob", first.State, "resend", ipX))
	check(t, wait, want{policy.Challenge, "resend_cooldown",
		"Please wait 20 seconds before asking for a new code. Enter the code sent to +31 6*****78 (or type resend)", "sms"})
	if n := len(f.sender.messages()); n != 1 {
		t.Fatalf("got %d messages after a resend within the cool-down, want still 1", n)
	}

	f.advance(25 * time.Second)
	resent := f.decide(answer("bob", wait.State, " Resend ", ipX))
	check(t, resent, want{policy.Challenge, "resend", "A new code was sent to +31 6*****78", "sms"})
	sent := f.sender.messages()
	if len(sent) != 2 {
		t.Fatalf("got %d messages after a resend, want 2", len(sent))
	}
	codeB := sent[1].Code
	if codeA == codeB {
		// One chance in a million; a fixed Rand would hide real reuse.
		t.Skip("the new code happens to equal the old one")
	}
	// The resend voided the first code.
	again := f.decide(answer("bob", resent.State, codeA, ipX))
	check(t, again, want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "sms"})
	check(t, f.decide(answer("bob", again.State, codeB, ipX)), want{policy.Accept, "code_ok", "", "sms"})
}

func TestResendKeepsAttempts(t *testing.T) {
	f := newFixture(t)
	first := f.decide(login("bob", ipX))
	wrong := f.decide(answer("bob", first.State, "000000", ipX))
	if wrong.Reason != "wrong_code" {
		t.Skipf("000000 happened to be the code")
	}
	resent := f.decide(answer("bob", wrong.State, "resend", ipX))
	check(t, resent, want{policy.Challenge, "resend", "A new code was sent to +31 6*****78", "sms"})
	ch, err := f.challenge(resent.State)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Attempts != 1 {
		t.Errorf("got %d attempts after a resend, want the 1 made before it", ch.Attempts)
	}
}

func TestResendTOTP(t *testing.T) {
	f := newFixture(t)
	res := f.decide(login("alice", ipX))
	again := f.decide(answer("alice", res.State, "resend", ipX))
	check(t, again, want{policy.Challenge, "resend_totp", msgs.ResendTOTP + " " + msgs.TOTPPrompt, "totp"})
	check(t, f.decide(answer("alice", again.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
}

func TestSwitchMethod(t *testing.T) {
	f := newFixture(t)
	f.addBackupUsers()
	res := f.decide(login("sam", ipX))
	check(t, res, want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****21 (or type resend)", "sms"})
	smsCode := f.sender.messages()[0].Code

	// sam has no authenticator app: the SMS challenge goes on.
	none := f.decide(answer("sam", res.State, "TOTP", ipX))
	check(t, none, want{policy.Challenge, "method_unavailable",
		"Your account has no authenticator app set up. Enter the code sent to +31 6*****21 (or type resend)", "sms"})

	mail := f.decide(answer("sam", none.State, "email", ipX))
	check(t, mail, want{policy.Challenge, "switch", "Enter the code sent to s***@example.com (or type resend)", "email"})
	sent := f.sender.messages()
	if len(sent) != 2 || sent[1].Channel != "email" || sent[1].To != "sam@example.com" {
		t.Fatalf("got %+v, want an SMS then an e-mail", sent)
	}
	if smsCode != sent[1].Code {
		wrong := f.decide(answer("sam", mail.State, smsCode, ipX))
		check(t, wrong, want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "email"})
		mail = wrong
	}
	check(t, f.decide(answer("sam", mail.State, sent[1].Code, ipX)), want{policy.Accept, "code_ok", "", "email"})
}

func TestSwitchToTOTP(t *testing.T) {
	f := newFixture(t)
	f.addBackupUsers()
	res := f.decide(login("tina", ipX))
	check(t, res, want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****22 (or type resend)", "sms"})
	sw := f.decide(answer("tina", res.State, "totp", ipX))
	check(t, sw, want{policy.Challenge, "switch", msgs.TOTPPrompt, "totp"})
	if n := len(f.sender.messages()); n != 1 {
		t.Errorf("got %d messages after switching to TOTP, want still 1", n)
	}
	check(t, f.decide(answer("tina", sw.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
}

func TestRepeatedLoginReusesChallenge(t *testing.T) {
	f := newFixture(t)
	first := f.decide(login("bob", ipX))
	second := f.decide(login("bob", ipX))
	check(t, second, want{policy.Challenge, "challenge_reused", "Enter the code sent to +31 6*****78 (or type resend)", "sms"})
	if second.State != first.State {
		t.Errorf("got State %s, want the live challenge's %s", second.State, first.State)
	}
	if n := len(f.sender.messages()); n != 1 {
		t.Fatalf("got %d messages after a repeated login, want 1", n)
	}
	// From another IP it is another login.
	other := f.decide(login("bob", ipY))
	check(t, other, want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****78 (or type resend)", "sms"})
	if n := len(f.sender.messages()); n != 2 {
		t.Errorf("got %d messages after a login from another IP, want 2", n)
	}
	// Once the code has expired a new one is sent.
	f.advance(3*time.Minute + time.Second)
	check(t, f.decide(login("bob", ipX)), want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****78 (or type resend)", "sms"})
	if n := len(f.sender.messages()); n != 3 {
		t.Errorf("got %d messages after expiry, want 3", n)
	}
}

// TestConcurrentLoginsSendOnce: logins of one user at once send one
// code and share its challenge; one waits behind the login that is
// sending, and any more while both are under way are turned away as busy
// rather than hold a worker each.
func TestConcurrentLoginsSendOnce(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	results := make([]policy.Result, 8)
	for i := range results {
		wg.Go(func() {
			results[i] = f.engine.Decide(context.Background(), login("bob", ipX))
		})
	}
	wg.Wait()
	if n := len(f.sender.messages()); n != 1 {
		t.Errorf("got %d messages from %d logins at once, want 1", n, len(results))
	}
	state := ""
	for _, r := range results {
		switch {
		case r.Decision == policy.Reject && r.Reason == "busy":
		case r.Decision != policy.Challenge || r.State == "":
			t.Errorf("got %v (%s), want a challenge or busy", r.Decision, r.Reason)
		case state == "":
			state = r.State
		case r.State != state:
			t.Errorf("got States %s and %s, want one challenge shared", state, r.State)
		}
	}
	if state == "" {
		t.Error("no login got the challenge")
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name    string
		limits  policy.Limits
		users   []store.User
		logins  []string // users, each from a fresh IP
		want    want     // the last login's result
		wantMsg int      // messages sent in all
	}{
		{
			name:    "per user per hour",
			limits:  policy.Limits{PerUserPerHour: 2},
			logins:  []string{"bob", "bob", "bob"},
			want:    want{policy.Reject, "limit_user_hour", msgs.LimitReached, "sms"},
			wantMsg: 2,
		},
		{
			name:    "per destination per day",
			limits:  policy.Limits{PerDestinationPerDay: 1},
			users:   []store.User{{Name: "bob2", Tenant: "acme", Method: policy.MethodSMS, Phone: "+31612345678"}},
			logins:  []string{"bob", "bob2"},
			want:    want{policy.Reject, "limit_destination_day", msgs.LimitReached, "sms"},
			wantMsg: 1,
		},
		{
			name:    "tenant budget",
			limits:  policy.Limits{DailyBudget: 1},
			users:   []store.User{{Name: "uma", Tenant: "acme", Method: policy.MethodSMS, Phone: "+31622223333"}},
			logins:  []string{"bob", "uma"},
			want:    want{policy.Reject, "limit_tenant_budget", msgs.SendRefused, "sms"},
			wantMsg: 1,
		},
		{
			name:    "budget is for paid channels",
			limits:  policy.Limits{DailyBudget: 1},
			logins:  []string{"bob", "rita"},
			want:    want{policy.Challenge, "challenge", "Enter the code sent to r***@example.com (or type resend)", "email"},
			wantMsg: 2,
		},
		{
			name:    "country not allowed",
			limits:  policy.Limits{Countries: []string{"31", "32"}},
			users:   []store.User{{Name: "viktor", Tenant: "acme", Method: policy.MethodSMS, Phone: "+4915112345678"}},
			logins:  []string{"bob", "viktor"},
			want:    want{policy.Reject, "country_not_allowed", msgs.SendRefused, "sms"},
			wantMsg: 1,
		},
		{
			name:    "a limit gives way to a backup method",
			limits:  policy.Limits{PerUserPerHour: 1},
			logins:  []string{"tina", "tina"},
			want:    want{policy.Challenge, "challenge_backup", msgs.LimitReached + " " + msgs.TOTPPrompt, "totp"},
			wantMsg: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) { t.Limits = tt.limits }))
			f.addBackupUsers()
			f.addUsers(tt.users...)
			var res policy.Result
			for i, u := range tt.logins {
				ip := ipX.As4()
				ip[3] = byte(100 + i)
				res = f.decide(login(u, netip.AddrFrom4(ip)))
			}
			check(t, res, tt.want)
			if n := len(f.sender.messages()); n != tt.wantMsg {
				t.Errorf("got %d messages, want %d", n, tt.wantMsg)
			}
		})
	}
}

func TestLimitWindowMoves(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) { t.Limits = policy.Limits{PerUserPerHour: 1} }))
	check(t, f.decide(login("bob", ipX)), want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****78 (or type resend)", "sms"})
	check(t, f.decide(login("bob", ipY)), want{policy.Reject, "limit_user_hour", msgs.LimitReached, "sms"})
	f.advance(time.Hour)
	check(t, f.decide(login("bob", ipY)), want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****78 (or type resend)", "sms"})
}

func TestResendOverLimitKeepsCode(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) { t.Limits = policy.Limits{PerUserPerHour: 1} }))
	first := f.decide(login("bob", ipX))
	code := f.sender.messages()[0].Code
	again := f.decide(answer("bob", first.State, "resend", ipX))
	check(t, again, want{policy.Challenge, "limit_user_hour", msgs.LimitReached + " Enter the code sent to +31 6*****78 (or type resend)", "sms"})
	if n := len(f.sender.messages()); n != 1 {
		t.Errorf("got %d messages, want 1", n)
	}
	check(t, f.decide(answer("bob", again.State, code, ipX)), want{policy.Accept, "code_ok", "", "sms"})
}

func TestVoice(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) { t.Methods = append(t.Methods, policy.MethodVoice) }))
	f.addUsers(store.User{Name: "walt", Tenant: "acme", Method: policy.MethodVoice, Phone: "+31612345678"})
	res := f.decide(login("walt", ipX))
	check(t, res, want{policy.Challenge, "challenge", "Answer the call to +31 6*****78 and enter the code you hear (or type resend)", "voice"})
	m := f.sender.messages()[0]
	spelled := strings.Join(strings.Split(m.Code, ""), " ")
	if m.Channel != "voice" || m.Text != "Your login code is "+spelled+". Once more: "+spelled+"." {
		t.Errorf("got %+v, want a voice message that spells the code twice", m)
	}
}

func TestDutchTenant(t *testing.T) {
	nl, _ := policy.Catalog("nl")
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) { t.Language, t.Messages = "nl", nl }))
	res := f.decide(login("bob", ipX))
	check(t, res, want{policy.Challenge, "challenge", "Voer de code in die naar +31 6*****78 is gestuurd (of typ resend)", "sms"})
	m := f.sender.messages()[0]
	if m.Lang != "nl" || m.Text != "Uw inlogcode is "+m.Code {
		t.Errorf("got %+v, want a Dutch message tagged nl", m)
	}
}

func TestCatalogsComplete(t *testing.T) {
	for _, lang := range policy.Languages() {
		m, ok := policy.Catalog(lang)
		if !ok {
			t.Fatalf("Catalog(%q) missing", lang)
		}
		for k, v := range m.All() {
			if v == "" {
				t.Errorf("%s: message %s is empty", lang, k)
			}
			if len(v) > 200 {
				t.Errorf("%s: message %s is %d bytes, leave room in 253 for what is added", lang, k, len(v))
			}
		}
	}
	if got := policy.Languages(); strings.Join(got, " ") != "en nl" {
		t.Errorf("got languages %v, want en nl", got)
	}
}
