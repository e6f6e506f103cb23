package main

import (
	"strings"
	"testing"

	"layeh.com/radius"
)

const appendConfig = `
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: vpn, address: 127.0.0.1/32, secret: testing123, tenant: acme, password: local,
     otp_in_password: append, client_ip_attribute: Calling-Station-Id}
  - {name: vpn-sep, address: 127.0.0.2/32, secret: testing123, tenant: acme, password: local,
     otp_in_password: append, otp_separator: ",", client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [totp, sms], code_digits: 6}
delivery: {allow_console: true, sms: [console]}
`

func TestAppendMode(t *testing.T) {
	s := startServer(t, appendConfig)
	addUser := func(name string, args ...string) {
		var out, errOut strings.Builder
		if err := run(t.Context(), append([]string{"user", "add", name, "--tenant", "acme", "--password-stdin", "--config", s.config}, args...),
			strings.NewReader("hunter2\n"), &out, &errOut); err != nil {
			t.Fatalf("user add %s: %v %s", name, err, errOut.String())
		}
	}
	addUser("tom")
	s.cli(t, "user", "totp", "tom", "--secret", testSecret)
	addUser("sue", "--phone", "+31612345678")
	addr := s.addrs[0]
	login := func(user, pw, ip, from string) *radius.Packet {
		t.Helper()
		return mustExchange(t, addr, request{user: user, password: pw, callingStation: ip, from: from})
	}
	badFormat := "Type your password followed by your code, or by sms to get one."
	// A user with only an app is not offered sms.
	appFormat := "Type your password followed by the code from your authenticator app."

	// From the office the password alone will do.
	expect(t, login("tom", "hunter2", "192.0.2.5", ""), radius.CodeAccessAccept, "HQ IP Allowed!")
	// Elsewhere: password and code.
	expect(t, login("tom", "hunter2"+totpNow(t), "203.0.113.5", ""), radius.CodeAccessAccept, "")
	// A malformed value is refused before the password is even checked.
	expect(t, login("tom", "hunter2", "203.0.113.6", ""), radius.CodeAccessReject, appFormat)
	expect(t, login("tom", "hunter2abc", "203.0.113.6", ""), radius.CodeAccessReject, appFormat)
	expect(t, login("sue", "hunter2abc", "203.0.113.6", ""), radius.CodeAccessReject, badFormat)
	// A wrong code, or a right code with a wrong password.
	expect(t, login("tom", "hunter2"+wrongTOTP(t), "203.0.113.7", ""), radius.CodeAccessReject, "Wrong code, 2 tries left")
	expect(t, login("tom", "wrong"+totpNow(t), "203.0.113.8", ""), radius.CodeAccessReject, "Wrong user name or password")

	// A method word sends a code; the next login carries it.
	expect(t, login("sue", "hunter2sms", "203.0.113.9", ""), radius.CodeAccessReject,
		"Code sent to +31 6*****78; log in again with your password followed by the code.")
	code := s.lastCode(t, "+31612345678")
	expect(t, login("sue", "hunter2"+code, "203.0.113.9", ""), radius.CodeAccessAccept, "")
	// Used up: the same code again is refused.
	expect(t, login("sue", "hunter2"+code, "203.0.113.9", ""), radius.CodeAccessReject, "")

	// With a separator, and the word in capitals.
	expect(t, login("sue", "hunter2,SMS", "203.0.113.10", "127.0.0.2"), radius.CodeAccessReject,
		"Code sent to +31 6*****78; log in again with your password followed by the code.")
	code = s.lastCode(t, "+31612345678")
	expect(t, login("sue", "hunter2,"+code, "203.0.113.10", "127.0.0.2"), radius.CodeAccessAccept, "")
	expect(t, login("sue", "hunter2", "203.0.113.11", "127.0.0.2"), radius.CodeAccessReject, badFormat)
}
