package main

import (
	"fmt"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/directory/ldaptest"
)

// TestDirectoryPhoneGivesMethod: a user added without a method in a
// required tenant, whose phone the directory gives at login, gets SMS as
// their method (the tenant allows it) instead of staying without one and
// being refused even from the office.
func TestDirectoryPhoneGivesMethod(t *testing.T) {
	dir := ldaptest.Start(t)
	s := startServer(t, fmt.Sprintf(`
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
ldap:
  servers: ["%s"]
  bind_dn: "uid={user},ou=people,dc=example,dc=com"
clients:
  - {name: forti, address: 127.0.0.1/32, secret: testing123, tenant: acme, password: ldap,
     client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [totp, sms], country_code: "31"}
delivery: {allow_console: true, sms: [console]}
`, dir.URL))
	addr := s.addrs[0]
	s.cli(t, "user", "add", "alice", "--tenant", "acme")

	expect(t, mustExchange(t, addr, request{user: "alice", password: "right", callingStation: "192.0.2.10"}),
		radius.CodeAccessAccept, "HQ IP Allowed!")
	show := s.cli(t, "user", "show", "alice")
	for _, want := range []string{"+31612345678", "method:          sms"} {
		if !strings.Contains(show, want) {
			t.Errorf("user show alice after a login lacks %q:\n%s", want, show)
		}
	}
	ch := mustExchange(t, addr, request{user: "alice", password: "right", callingStation: "203.0.113.5"})
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	acc := mustExchange(t, addr, request{user: "alice", password: s.lastCode(t, "+31612345678"), callingStation: "203.0.113.5",
		state: string(rfc2865.State_Get(ch))})
	expect(t, acc, radius.CodeAccessAccept, "")

	// bob has nothing in the directory: still no method, and told so.
	s.cli(t, "user", "add", "bob", "--tenant", "acme")
	expect(t, mustExchange(t, addr, request{user: "bob", password: "bobs-pw", callingStation: "192.0.2.10"}),
		radius.CodeAccessReject, "")
}

// TestCheckConfigNamesUsersWhoCannotLogIn: check-config reads the store
// (or asks the running server) and names a user with no method in a
// required tenant without enrolment, as user add warned.
func TestCheckConfigNamesUsersWhoCannotLogIn(t *testing.T) {
	_, cfg := writeConfig(t, cliConfig)
	if out, _, status := cliRun(t, cfg, "", "check-config"); status != 0 || strings.Contains(out, "cannot log in") {
		t.Fatalf("check-config without a store: %d\n%s", status, out)
	}
	cliRun(t, cfg, "", "user", "add", "ivan", "--tenant", "acme")
	cliRun(t, cfg, "", "user", "add", "jo", "--tenant", "acme", "--phone", "+31612345678")
	out, errOut, status := cliRun(t, cfg, "", "check-config")
	if status != 0 || !strings.Contains(out, "warning: user ivan cannot log in: no second factor") || strings.Contains(out, "user jo") {
		t.Errorf("check-config with ivan (no method) and jo (sms): status %d, got\n%s%s\nwant a warning for ivan only", status, out, errOut)
	}
}
