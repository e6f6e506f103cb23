package main

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/directory/ldaptest"
)

// integerAttr reads an attribute of type integer, and whether it is there.
func integerAttr(p *radius.Packet, typ radius.Type) (uint32, bool) {
	v, ok := p.Lookup(typ)
	if !ok || len(v) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

// replyMessages is every Reply-Message of p, in order.
func replyMessages(p *radius.Packet) []string {
	var out []string
	for _, a := range p.Attributes {
		if a.Type == rfc2865.ReplyMessage_Type {
			out = append(out, string(a.Attribute))
		}
	}
	return out
}

// TestChallengeTimeoutAndPrompt: an Access-Challenge tells the gateway how
// long the code can still be answered (Session-Timeout, RFC 2865 §5.27) and
// whether to show what the user types (Prompt: No-Echo for a code, Echo for
// a phone number).
func TestChallengeTimeoutAndPrompt(t *testing.T) {
	w := startAccount(t) // code_ttl is the default, 3m
	w.cli(t, "user", "add", "tim", "--tenant", "acme")
	w.cli(t, "user", "totp", "tim", "--secret", testSecret)
	check := func(name string, p *radius.Packet, timeout, prompt uint32) {
		t.Helper()
		if p.Code != radius.CodeAccessChallenge {
			t.Fatalf("%s: got %s, want Access-Challenge", name, p.Code)
		}
		if got, ok := integerAttr(p, rfc2865.SessionTimeout_Type); !ok || got != timeout {
			t.Errorf("%s: Session-Timeout: got %d (present %v), want %d", name, got, ok, timeout)
		}
		if got, ok := integerAttr(p, promptType); !ok || got != prompt {
			t.Errorf("%s: Prompt: got %d (present %v), want %d", name, got, ok, prompt)
		}
	}
	ch := w.login(t, "tim", "203.0.113.5")
	check("TOTP challenge", ch, 180, 0)
	w.clock.Advance(70 * time.Second)
	// An app's code costs nothing to ask for again: the login repeated
	// gets a question of its own; the first keeps its time.
	check("the same login again, 70 s on", w.login(t, "tim", "203.0.113.5"), 180, 0)
	check("a wrong code to the first question, 70 s on", w.answer(t, "tim", "203.0.113.5", wrongTOTPAt(t, w.clock.Now()), ch), 110, 0)

	w.cli(t, "user", "add", "phil", "--tenant", "acme")
	ask := w.login(t, "phil", "203.0.113.6")
	check("asked for a phone number", ask, 180, 1)
	sent := w.answer(t, "phil", "203.0.113.6", "06 1234 5678", ask)
	check("a code sent there", sent, 180, 0)

	// An Accept and a Reject carry neither.
	acc := w.answer(t, "phil", "203.0.113.6", w.lastCode(t, "+31612345678"), sent)
	expect(t, acc, radius.CodeAccessAccept, "")
	for _, typ := range []radius.Type{rfc2865.SessionTimeout_Type, promptType} {
		if _, ok := acc.Lookup(typ); ok {
			t.Errorf("Accept carries attribute %d", typ)
		}
	}
}

// TestLongReplyMessage: a text longer than a Reply-Message holds (a long
// code_sent after the resend_wait it is joined to) reaches the gateway
// whole, over several Reply-Messages, as FreeRADIUS's radclient reads them.
func TestLongReplyMessage(t *testing.T) {
	wait := "You asked for a new code too soon: the code we sent a moment ago is still on its way and stays valid. Please wait {seconds} seconds before you ask for another one."
	sent := "We have sent a text message with a six-digit sign-in code to your mobile phone {destination}. Enter the code here to continue, or type resend to get a new code sent to you."
	s := startServerAt(t, strings.Replace(e2eConfig, "code_ttl: 3m,", "code_ttl: 3m, messages: {resend_wait: \""+wait+"\", code_sent: \""+sent+"\"},", 1), newClock().Now)
	s.cli(t, "user", "add", "lisa", "--tenant", "acme", "--phone", "+31612345601")
	addr := s.addrs[0]
	ch := mustExchange(t, addr, request{user: "lisa", password: "pw", callingStation: "203.0.113.9"})
	resent := mustExchange(t, addr, request{user: "lisa", password: "resend", callingStation: "203.0.113.9", state: string(rfc2865.State_Get(ch))})
	parts := replyMessages(resent)
	if len(parts) < 2 {
		t.Fatalf("got %d Reply-Messages, want the text over several: %q", len(parts), parts)
	}
	text := strings.Join(parts, "")
	want := "Please wait 30 seconds before you ask for another one. We have sent a text message with a six-digit sign-in code to your mobile phone +31 6*****01. Enter the code here to continue, or type resend to get a new code sent to you."
	if !strings.HasSuffix(text, want) {
		t.Fatalf("got %q, want it to end %q", text, want)
	}
	for _, p := range parts {
		if len(p) > 253 {
			t.Errorf("a Reply-Message of %d bytes", len(p))
		}
	}

	// radclient, a client we did not write, reads them all.
	out := radclient(t, addr, `User-Name = "lisa"`, `User-Password = "resend"`, `Calling-Station-Id = "203.0.113.9"`,
		`State = 0x`+hexOf(rfc2865.State_Get(resent)), `Message-Authenticator = 0x00`)
	if got := received(t, out); got != "Access-Challenge" {
		t.Fatalf("radclient: got %s, want Access-Challenge:\n%s", got, out)
	}
	if n := strings.Count(out, "Reply-Message = "); n < 2 {
		t.Errorf("radclient shows %d Reply-Messages, want 2 or more:\n%s", n, out)
	}
	if !strings.Contains(out, `or type resend to get a new code sent to you."`) {
		t.Errorf("radclient does not show the end of the text:\n%s", out)
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// promptType is Prompt (RFC 2869 §5.10).
const promptType radius.Type = 76

const replyConfig = `
radius: {listen: ["127.0.0.1:0"], accounting_listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: forti, address: 127.0.0.1/32, secret: testing123, tenant: acme-branch,
     client_ip_attribute: Calling-Station-Id,
     reply_attributes: ["Fortinet-Group-Name=vpn-users", "Fortinet-Group-Name=vpn-{tenant}", "Idle-Timeout=900"]}
tenants:
  - name: acme
    office_networks: [192.0.2.0/24]
    methods: [totp]
    reply_attributes: ["Filter-Id={user}-{method}", "Session-Timeout=28800", "Framed-IP-Address=10.8.0.1", "Idle-Timeout=600", "25461:5=pa-{user}"]
  - {name: acme-branch, parent: acme}
`

// vsa returns the values of a vendor's attribute in p.
func vsa(p *radius.Packet, vendor uint32, typ byte) []string {
	var out []string
	for _, a := range p.Attributes {
		if a.Type != rfc2865.VendorSpecific_Type {
			continue
		}
		id, v, err := radius.VendorSpecific(a.Attribute)
		if err != nil || id != vendor || len(v) < 2 || v[0] != typ {
			continue
		}
		out = append(out, string(v[2:v[1]]))
	}
	return out
}

// TestReplyAttributes: an Accept carries the tenant's reply attributes
// (inherited through parent), the client's over them, and the user's over
// both, with {user}, {tenant} and {method} filled in; the Challenge before
// it carries none of them.
func TestReplyAttributes(t *testing.T) {
	s := startServer(t, replyConfig)
	s.cli(t, "user", "add", "alice", "--tenant", "acme-branch")
	s.cli(t, "user", "totp", "alice", "--secret", testSecret)
	s.cli(t, "user", "add", "bob", "--tenant", "acme-branch")
	s.cli(t, "user", "totp", "bob", "--secret", testSecret)
	s.cli(t, "user", "set", "bob", "--reply", "Idle-Timeout=60", "--reply", "Fortinet-Group-Name=admins")
	addr := s.addrs[0]

	ch := mustExchange(t, addr, request{user: "alice", password: "pw", callingStation: "203.0.113.5"})
	expect(t, ch, radius.CodeAccessChallenge, "")
	if got := rfc2865.FilterID_GetString(ch); got != "" {
		t.Errorf("the Challenge carries Filter-Id %q", got)
	}
	acc := mustExchange(t, addr, request{user: "alice", password: totpNow(t), callingStation: "203.0.113.5", state: string(rfc2865.State_Get(ch))})
	expect(t, acc, radius.CodeAccessAccept, "")
	if got := rfc2865.FilterID_GetString(acc); got != "alice-totp" {
		t.Errorf("Filter-Id: got %q, want alice-totp", got)
	}
	if got := rfc2865.SessionTimeout_Get(acc); got != 28800 {
		t.Errorf("Session-Timeout: got %d, want 28800", got)
	}
	if got := rfc2865.FramedIPAddress_Get(acc); got.String() != "10.8.0.1" {
		t.Errorf("Framed-IP-Address: got %s, want 10.8.0.1", got)
	}
	if v, _ := rfc2865.IdleTimeout_Gets(acc); len(v) != 1 || v[0] != 900 {
		t.Errorf("Idle-Timeout: got %v, want the client's [900] over the tenant's", v)
	}
	if got := vsa(acc, 12356, 1); !slices.Equal(got, []string{"vpn-users", "vpn-acme-branch"}) {
		t.Errorf("Fortinet-Group-Name: got %q, want both of the client's", got)
	}
	if got := vsa(acc, 25461, 5); !slices.Equal(got, []string{"pa-alice"}) {
		t.Errorf("25461:5: got %q, want pa-alice", got)
	}

	// bob's own replace the client's and the tenant's of the same names;
	// from the office, without a code: {method} is empty.
	acc = mustExchange(t, addr, request{user: "bob", password: "pw", callingStation: "192.0.2.9"})
	expect(t, acc, radius.CodeAccessAccept, "HQ IP Allowed!")
	if v, _ := rfc2865.IdleTimeout_Gets(acc); len(v) != 1 || v[0] != 60 {
		t.Errorf("bob's Idle-Timeout: got %v, want [60]", v)
	}
	if got := vsa(acc, 12356, 1); !slices.Equal(got, []string{"admins"}) {
		t.Errorf("bob's Fortinet-Group-Name: got %q, want [admins]", got)
	}
	if got := rfc2865.FilterID_GetString(acc); got != "bob-" {
		t.Errorf("bob's Filter-Id: got %q, want bob-", got)
	}
	show := s.cli(t, "user", "show", "bob")
	if !strings.Contains(show, "Idle-Timeout=60 Fortinet-Group-Name=admins") {
		t.Errorf("user show:\n%s", show)
	}
	s.cli(t, "user", "set", "bob", "--clear-reply")
	acc = mustExchange(t, addr, request{user: "bob", password: "pw", callingStation: "192.0.2.9"})
	if got := vsa(acc, 12356, 1); len(got) != 2 {
		t.Errorf("after --clear-reply: Fortinet-Group-Name %q, want the client's two", got)
	}

	// radclient, reading them by name.
	out := radclient(t, addr, `User-Name = "bob"`, `User-Password = "pw"`, `Calling-Station-Id = "192.0.2.9"`, `Message-Authenticator = 0x00`)
	for _, want := range []string{`Filter-Id = "bob-"`, `Session-Timeout = 28800`, `Fortinet-Group-Name = "vpn-users"`,
		`Fortinet-Group-Name = "vpn-acme-branch"`, `Framed-IP-Address = 10.8.0.1`, `PaloAlto-User-Group = "pa-bob"`, `Class = 0x`} {
		if !strings.Contains(out, want) {
			t.Errorf("radclient does not show %s:\n%s", want, out)
		}
	}
}

// TestReplyAttributesRefused: the CLI refuses a value that does not fit
// its attribute, an unknown name and what otpgate sets itself, and says
// what to type.
func TestReplyAttributesRefused(t *testing.T) {
	s := startServer(t, replyConfig)
	s.cli(t, "user", "add", "carol", "--tenant", "acme")
	for _, tc := range []struct{ arg, want string }{
		{"Session-Timeout=long", `"long" is not a number`},
		{"Framed-IP-Address=10.0.0", "is not an IPv4 address"},
		{"No-Such-Thing=1", `unknown attribute "No-Such-Thing"`},
		{"State=x", "otpgate sets State itself"},
		{"Reply-Message=hello", "otpgate sets Reply-Message itself"},
		{"Filter-Id", "Name=value"},
	} {
		out, err := s.cliErr("user", "set", "carol", "--reply", tc.arg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--reply %s: got %v:\n%s\nwant it refused with %q", tc.arg, err, out, tc.want)
		}
	}
	if show := s.cli(t, "user", "show", "carol"); !strings.Contains(show, "reply:") || strings.Contains(show, "Session-Timeout") {
		t.Errorf("a refused --reply was stored:\n%s", show)
	}
}

// TestClassJoinsAccounting: every Accept carries a Class that names the
// login, and the gateway's accounting, which sends it back, is joined to
// the login by it in the audit log.
func TestClassJoinsAccounting(t *testing.T) {
	s := startServer(t, replyConfig)
	s.cli(t, "user", "add", "dave", "--tenant", "acme")
	s.cli(t, "user", "totp", "dave", "--secret", testSecret)
	addr := s.addrs[0]
	a1 := mustExchange(t, addr, request{user: "dave", password: "pw", callingStation: "192.0.2.9"})
	a2 := mustExchange(t, addr, request{user: "dave", password: "pw", callingStation: "192.0.2.9"})
	c1, c2 := string(rfc2865.Class_Get(a1)), string(rfc2865.Class_Get(a2))
	if !strings.HasPrefix(c1, "otpgate:") || len(c1) != len("otpgate:")+32 || c1 == c2 {
		t.Fatalf("Class: got %q and %q, want a distinct otpgate:<128 bits> each", c1, c2)
	}
	out := radclientCmd(t, s.acct, "acct", `User-Name = "dave"`, `Acct-Status-Type = Start`,
		`Acct-Session-Id = "s-1"`, `Class = 0x`+hexOf([]byte(c1)))
	if got := received(t, out); got != "Accounting-Response" {
		t.Fatalf("got %s:\n%s", got, out)
	}
	audit := s.cli(t, "audit", "--json", "--user", "dave")
	var accept, start bool
	for _, l := range strings.Split(audit, "\n") {
		accept = accept || strings.Contains(l, `"decision":"accept"`) && strings.Contains(l, `"class":"`+c1+`"`)
		start = start || strings.Contains(l, `"reason":"session_start"`) && strings.Contains(l, `"class":"`+c1+`"`)
	}
	if !accept || !start {
		t.Errorf("audit log: login with Class %s found %v, its session start %v:\n%s", c1, accept, start, audit)
	}
}

// TestLoadConfigReplyBad: check-config checks every reply attribute's name
// and value, and every group's name, each mistake naming its key.
func TestLoadConfigReplyBad(t *testing.T) {
	_, err := loadConfig(filepath.Join("testdata", "bad-reply.yml"))
	if err == nil {
		t.Fatal("got no error")
	}
	for _, w := range []string{
		`radius.upstream.pass_attributes[1]: unknown attribute "Nope-Attr"`,
		`radius.upstream.drop_attributes[0]: "1:2:3" is not a vendor attribute`,
		`clients[0].reply_attributes[0]: Session-Timeout: "soon" is not a number`,
		`clients[0].reply_attributes[2]: otpgate sets Proxy-State itself`,
		`tenants[0] (t).reply_attributes[0]: Framed-IP-Address: "2001:db8::1" is not an IPv4 address`,
		`tenants[0] (t).reply_attributes[1]: "Filter-Id" is not Name=value`,
		`tenants[0] (t).reply_attributes[3]: Session-Timeout: {user}, {tenant} and {method} only go in text values`,
		`tenants[0] (t).group_replies["cn=vpn admins,ou=groups,dc=corp,dc=example,dc=com"][1]: Idle-Timeout: "never" is not a number`,
		`tenants[0] (t).group_replies: "not a dn" is not a group's DN`,
		`tenants[0] (t).required_groups[1]: "also not a dn" is not a group's DN`,
		"tenants[0] (t): group_replies and required_groups need the directory's groups, which only a client with password: ldap reads",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	for _, notWant := range []string{"reply_attributes[2]: Fortinet", "Class=OU", "required_groups[0]"} {
		if strings.Contains(err.Error(), notWant) {
			t.Errorf("error has %q, which is right:\n%v", notWant, err)
		}
	}
}

// TestUpstreamReplyAttributes: FreeRADIUS as the upstream checks the
// password only for logins whose gateway attributes match (as an NPS
// network policy would), and its Accept's Class, Filter-Id (made from the
// gateway's attributes it was sent) and Fortinet VSA reach the gateway in
// otpgate's Accept, through the challenge for a code; its Reply-Message
// does not, and the tenant's Session-Timeout replaces its own.
func TestUpstreamReplyAttributes(t *testing.T) {
	upstream := startFreeRADIUSUsers(t, "upstream-secret", `alice Cleartext-Password := "right", NAS-Port-Type == Virtual
	Class := "nps-class-42",
	Filter-Id := "from-%{NAS-Identifier}-%{Called-Station-Id}-%{NAS-IP-Address}-%{Calling-Station-Id}",
	Fortinet-Group-Name := "vpn-staff",
	Session-Timeout := 3600,
	Reply-Message := "upstream says hi"
`)
	s := startServer(t, fmt.Sprintf(`
radius:
  listen: ["127.0.0.1:0"]
  upstream:
    timeout: 2s
    servers: [{address: "%s", secret: upstream-secret}]
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: forti, address: 127.0.0.1/32, secret: testing123, tenant: acme, password: radius,
     client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, methods: [totp], reply_attributes: ["Session-Timeout=7200"]}
`, upstream))
	s.cli(t, "user", "add", "alice", "--tenant", "acme")
	s.cli(t, "user", "totp", "alice", "--secret", testSecret)
	addr := s.addrs[0]
	nas := radius.Attributes{
		{Type: rfc2865.NASIdentifier_Type, Attribute: radius.Attribute("forti1")},
		{Type: rfc2865.NASIPAddress_Type, Attribute: radius.Attribute{10, 1, 2, 3}},
		{Type: rfc2865.CalledStationID_Type, Attribute: radius.Attribute("vpn.example")},
	}
	virtual := &radius.AVP{Type: rfc2865.NASPortType_Type, Attribute: radius.Attribute{0, 0, 0, 5}}

	// Without NAS-Port-Type = Virtual the upstream's policy does not match.
	expect(t, mustExchange(t, addr, request{user: "alice", password: "right", callingStation: "203.0.113.5", attrs: nas}),
		radius.CodeAccessReject, "Wrong user name or password")

	withPort := append(slices.Clone(nas), virtual)
	ch := mustExchange(t, addr, request{user: "alice", password: "right", callingStation: "203.0.113.5", attrs: withPort})
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	if _, ok := ch.Lookup(rfc2865.Class_Type); ok {
		t.Errorf("the Challenge carries the upstream's Class")
	}
	acc := mustExchange(t, addr, request{user: "alice", password: totpNow(t), callingStation: "203.0.113.5", state: string(rfc2865.State_Get(ch))})
	expect(t, acc, radius.CodeAccessAccept, "")
	if got := string(rfc2865.Class_Get(acc)); got != "nps-class-42" {
		t.Errorf("Class: got %q, want the upstream's", got)
	}
	if v, _ := rfc2865.Class_Gets(acc); len(v) != 1 {
		t.Errorf("Class: got %d, want one", len(v))
	}
	if got, want := rfc2865.FilterID_GetString(acc), "from-forti1-vpn.example-10.1.2.3-203.0.113.5"; got != want {
		t.Errorf("Filter-Id: got %q, want %q (the gateway's attributes as the upstream saw them)", got, want)
	}
	if got := vsa(acc, 12356, 1); !slices.Equal(got, []string{"vpn-staff"}) {
		t.Errorf("Fortinet-Group-Name: got %q, want [vpn-staff]", got)
	}
	if v, _ := rfc2865.SessionTimeout_Gets(acc); len(v) != 1 || v[0] != 7200 {
		t.Errorf("Session-Timeout: got %v, want the tenant's [7200] instead of the upstream's", v)
	}
	if got := replyMessages(acc); len(got) != 0 {
		t.Errorf("Reply-Message: got %q, want none (not the upstream's)", got)
	}
	audit := s.cli(t, "audit", "--json", "--user", "alice")
	if !strings.Contains(audit, `"class":"nps-class-42"`) {
		t.Errorf("the audit log does not record the Class sent:\n%s", audit)
	}
}

// TestLDAPGroups: with the slapd test directory's groups (memberOf,
// nested), a user in none of the tenant's required groups is rejected
// before any code is sent, and a user's groups, nested ones too, give the
// group_replies on the Accept after the challenge.
func TestLDAPGroups(t *testing.T) {
	dir := ldaptest.Start(t)
	s := startServer(t, fmt.Sprintf(`
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
ldap:
  servers: ["%s"]
  bind_dn: "uid={user},ou=people,dc=example,dc=com"
  nested_groups: true
clients:
  - {name: forti, address: 127.0.0.1/32, secret: testing123, tenant: acme, password: ldap,
     client_ip_attribute: Calling-Station-Id}
tenants:
  - name: acme
    office_networks: [192.0.2.0/24]
    methods: [totp, sms]
    country_code: "31"
    create_users: true
    required_groups: ["CN=Everyone, OU=Groups, DC=example, DC=com"]
    reply_attributes: ["Fortinet-Group-Name=vpn-users"]
    group_replies:
      "CN=VPN Admins,OU=Groups,DC=example,DC=com": ["Fortinet-Group-Name=vpn-admins", "Filter-Id=admins"]
      "cn=staff,ou=groups,dc=example,dc=com": ["Fortinet-Group-Name=staff"]
delivery: {allow_console: true, sms: [console]}
`, dir.URL))
	addr := s.addrs[0]

	// carol is in no group: rejected, even from the office, nothing sent.
	expect(t, mustExchange(t, addr, request{user: "carol", password: "carols-pw", callingStation: "203.0.113.5"}),
		radius.CodeAccessReject, "Wrong user name or password")
	if strings.Contains(s.logText(), "console delivery") {
		t.Errorf("a code was sent to a user outside the required groups:\n%s", s.logText())
	}
	if audit := s.cli(t, "audit", "--user", "carol"); !strings.Contains(audit, "not_in_required_group") {
		t.Errorf("audit:\n%s", audit)
	}

	// alice is in VPN Admins, and through it in Staff and Everyone.
	ch := mustExchange(t, addr, request{user: "alice", password: "right", callingStation: "203.0.113.5"})
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	acc := mustExchange(t, addr, request{user: "alice", password: s.lastCode(t, "+31612345678"), callingStation: "203.0.113.5",
		state: string(rfc2865.State_Get(ch))})
	expect(t, acc, radius.CodeAccessAccept, "")
	if got := vsa(acc, 12356, 1); !slices.Equal(got, []string{"vpn-admins", "staff"}) {
		t.Errorf("alice's Fortinet-Group-Name: got %q, want her groups' [vpn-admins staff] over the tenant's", got)
	}
	if got := rfc2865.FilterID_GetString(acc); got != "admins" {
		t.Errorf("alice's Filter-Id: got %q, want admins", got)
	}
	// bob is in Staff, and through it in Everyone; from the office.
	s.cli(t, "user", "add", "bob", "--tenant", "acme")
	s.cli(t, "user", "totp", "bob", "--secret", testSecret)
	acc = mustExchange(t, addr, request{user: "bob", password: "bobs-pw", callingStation: "192.0.2.5"})
	expect(t, acc, radius.CodeAccessAccept, "HQ IP Allowed!")
	if got := vsa(acc, 12356, 1); !slices.Equal(got, []string{"staff"}) {
		t.Errorf("bob's Fortinet-Group-Name: got %q, want [staff]", got)
	}
}

// TestIssuerColon: an issuer with a colon would break the otpauth label
// (issuer:account), so check-config refuses it and says what to write.
func TestIssuerColon(t *testing.T) {
	_, path := writeConfig(t, strings.Replace(e2eConfig, "store:", "totp: {issuer: \"Acme: VPN\"}\nstore:", 1))
	out, errOut, code := cliRun(t, path, "", "check-config")
	if code == 0 || !strings.Contains(out+errOut, `totp.issuer: "Acme: VPN" has a colon`) || !strings.Contains(out+errOut, `"Acme VPN"`) {
		t.Errorf("check-config: exit %d:\n%s%s", code, out, errOut)
	}
}

// TestUpstreamSaltedAttributesNotPassed: an upstream's Accept may carry
// attributes whose value is hidden with the upstream's secret and the
// Request Authenticator of otpgate's request to it (Tunnel-Password, RFC
// 2868 §3.5; MS-MPPE-Send-Key and -Recv-Key, RFC 2548 §2.4), and EAP
// (RFC 3579) that otpgate does not speak. Passed on as they are, the
// gateway opens them with its own secret and its own request's
// authenticator: a wrong key, silently. They are not passed on.
func TestUpstreamSaltedAttributesNotPassed(t *testing.T) {
	upstream := startFreeRADIUSUsers(t, "upstream-secret", `alice Cleartext-Password := "right"
	Tunnel-Password := "per-user-psk",
	MS-MPPE-Send-Key := 0x00112233445566778899aabbccddeeff,
	MS-MPPE-Recv-Key := 0xffeeddccbbaa99887766554433221100,
	EAP-Message := 0x03010004,
	Filter-Id := "staff"
`)
	s := startServer(t, fmt.Sprintf(`
radius:
  listen: ["127.0.0.1:0"]
  upstream:
    timeout: 2s
    servers: [{address: "%s", secret: upstream-secret}]
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: forti, address: 127.0.0.1/32, secret: testing123, tenant: acme, password: radius}
tenants:
  - {name: acme, methods: [totp]}
`, upstream))
	s.cli(t, "user", "add", "alice", "--tenant", "acme")
	s.cli(t, "user", "totp", "alice", "--secret", testSecret)
	ch := mustExchange(t, s.addrs[0], request{user: "alice", password: "right"})
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	acc := mustExchange(t, s.addrs[0], request{user: "alice", password: totpNow(t), state: string(rfc2865.State_Get(ch))})
	expect(t, acc, radius.CodeAccessAccept, "")
	if got := rfc2865.FilterID_GetString(acc); got != "staff" {
		t.Fatalf("Filter-Id: got %q, want the upstream's (is the upstream's Accept passed on at all?)", got)
	}
	if v, ok := acc.Lookup(69); ok {
		t.Errorf("Tunnel-Password passed on as the upstream hid it for otpgate (%d bytes): the gateway reads a wrong password", len(v))
	}
	if v, ok := acc.Lookup(79); ok {
		t.Errorf("EAP-Message passed on: %x", v)
	}
	for _, typ := range []byte{16, 17} {
		if got := vsa(acc, 311, typ); len(got) != 0 {
			t.Errorf("MS-MPPE key %d passed on as the upstream hid it for otpgate", typ)
		}
	}
}
