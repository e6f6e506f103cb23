package main

import (
	"fmt"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/directory/ldaptest"
)

// TestLDAPFirstFactor checks passwords against a real slapd, the first of
// two servers being down, and fills an unknown user in from the directory.
func TestLDAPFirstFactor(t *testing.T) {
	dir := ldaptest.Start(t)
	s := startServer(t, fmt.Sprintf(`
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
ldap:
  servers: ["%s", "%s"]
  timeout: 2s
  bind_dn: "uid={user},ou=people,dc=example,dc=com"
clients:
  - {name: guacamole, address: 127.0.0.1/32, secret: testing123, tenant: acme, password: ldap,
     client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [totp, sms],
     country_code: "31", create_users: true}
delivery: {allow_console: true, sms: [console]}
`, ldaptest.ClosedURL(t), dir.URL))
	addr := s.addrs[0]

	expect(t, mustExchange(t, addr, request{user: "alice", password: "not-hers", callingStation: "192.0.2.5"}),
		radius.CodeAccessReject, "Wrong user name or password")
	expect(t, mustExchange(t, addr, request{user: "mallory", password: "right", callingStation: "192.0.2.5"}),
		radius.CodeAccessReject, "Wrong user name or password")
	// Right: alice is made from the directory, her mobile her SMS method.
	expect(t, mustExchange(t, addr, request{user: `EXAMPLE\alice`, password: "right", callingStation: "192.0.2.5"}),
		radius.CodeAccessAccept, "HQ IP Allowed!")
	show := squash(s.cli(t, "user", "show", "alice"))
	for _, want := range []string{"phone: +31612345678", "email: alice@example.com", "method: sms", "tenant: acme"} {
		if !strings.Contains(show, want) {
			t.Errorf("user show alice lacks %q:\n%s", want, show)
		}
	}
	ch := mustExchange(t, addr, request{user: "alice", password: "right", callingStation: "203.0.113.5"})
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	expect(t, mustExchange(t, addr, request{user: "alice", password: s.lastCode(t, "+31612345678"), callingStation: "203.0.113.5",
		state: string(rfc2865.State_Get(ch))}), radius.CodeAccessAccept, "")
}
