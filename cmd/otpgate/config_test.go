package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
)

// TestLoadConfigExample keeps config.example.yaml true to the code.
func TestLoadConfigExample(t *testing.T) {
	s, err := loadConfig("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.clients); got != 3 {
		t.Errorf("got %d clients, want 3", got)
	}
	acme := s.tenants[0]
	if acme.Name != "acme" || acme.Mode != policy.ModeRequired || acme.CodeTTL != 3*time.Minute ||
		acme.MaxAttempts != 3 || acme.ReconnectWindow != 8*time.Hour || len(acme.OfficeNetworks) != 2 {
		t.Errorf("tenant acme read as %+v", acme)
	}
	if acme.Messages != policy.DefaultMessages() {
		t.Errorf("the example's messages differ from the defaults it claims to show:\n got %+v\nwant %+v", acme.Messages, policy.DefaultMessages())
	}
	if !s.clients[0].RequireMessageAuthenticator || s.clients[0].ClientIP == nil {
		t.Errorf("client guacamole read as %+v", s.clients[0])
	}
	if rdg := s.clients[1]; !rdg.NoChallenge || !rdg.StripDomain || rdg.Hold != 50*time.Second {
		t.Errorf("client rdgateway read as %+v, want no challenge, DOMAIN stripped, 50s hold", rdg)
	}
	if s.clients[2].FirstFactor != policy.FirstFactorLocal {
		t.Errorf("client vpn: got first factor %q, want local", s.clients[2].FirstFactor)
	}
	if s.web.publicURL != "https://otp.example.com" || s.web.listen == "" || s.web.password != policy.FirstFactorNone {
		t.Errorf("web read as %+v", s.web)
	}
}

// TestLoadConfigWebPassword: the sign-in page's first factor is one
// otpgate can check, or none; never the gateway's.
func TestLoadConfigWebPassword(t *testing.T) {
	for _, tc := range []struct{ web, want string }{
		{`{listen: "127.0.0.1:0", public_url: "https://otp.example.com"}`, ""},
		{`{listen: "127.0.0.1:0", public_url: "https://otp.example.com", password: local}`, ""},
		{`{listen: "127.0.0.1:0", public_url: "https://otp.example.com", password: gateway}`,
			`web.password: "gateway" is not one of local, ldap, radius, none`},
		{`{listen: "127.0.0.1:0", public_url: "https://otp.example.com", password: ldap}`,
			"web.password: ldap needs a directory under ldap.servers"},
		{`{listen: "127.0.0.1:0", public_url: "https://otp.example.com", password: radius}`,
			"web.password: radius needs upstream servers under radius.upstream.servers"},
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte("clients: [{name: gw, address: 127.0.0.1, secret: s, tenant: t}]\ntenants: [{name: t}]\nweb: "+tc.web+"\n"), 0o600)
		s, err := loadConfig(path)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.web, err)
		case tc.want == "" && !strings.Contains(tc.web, "password") && s.web.password != policy.FirstFactorNone:
			t.Errorf("%s: got password %q, want none by default", tc.web, s.web.password)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.web, err, tc.want)
		}
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	s, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(s.listen, " "), "127.0.0.1:1812"; got != want {
		t.Errorf("got listen %q, want %q", got, want)
	}
	if s.storePath != "otpgate.db" || s.keyFile != "otpgate.db.key" || s.adminSocket != "otpgate.db.sock" {
		t.Errorf("got store %q key %q socket %q", s.storePath, s.keyFile, s.adminSocket)
	}
	if s.delivery.SMS[0] != "console" || !s.delivery.AllowConsole {
		t.Errorf("got sms delivery %v (allow_console %v), want console, allowed", s.delivery.SMS, s.delivery.AllowConsole)
	}
	// A quarter of the workers is kept for requests that need no I/O.
	if s.maxIO != 192 || s.holdLimits != (policy.HoldLimits{PerUser: 10, PerClient: 500, Total: 1000}) {
		t.Errorf("got max_concurrent_io %d, hold caps %+v, want 192 and 10/500/1000", s.maxIO, s.holdLimits)
	}
}

func TestLoadConfigIssueShape(t *testing.T) {
	// The shape the issue, the docs and later tests rely on.
	const y = `radius: {listen: "127.0.0.1:1812"}
store: {path: otpgate.db}
clients:
  - {name: guacamole, address: 127.0.0.1/32, secret: testing123, tenant: acme,
     client_ip_attribute: Calling-Station-Id, password: gateway}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [totp, sms],
     code_ttl: 3m, max_attempts: 3, reconnect_window: 8h}
`
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(y), 0o600)
	s, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.storePath != filepath.Join(filepath.Dir(path), "otpgate.db") {
		t.Errorf("store path %q is not relative to the config file", s.storePath)
	}
}

func TestLoadConfigTenantDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`clients: [{name: gw, address: 127.0.0.1, secret: s, tenant: t}]
tenants:
  - {name: t}
  - {name: nl, language: nl, country_code: "+31", messages: {home_ip: "Thuis-IP toegestaan"}}
`), 0o600)
	s, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	def, nl := s.tenants[0], s.tenants[1]
	if def.ResendCooldown != 30*time.Second || def.Limits.PerUserPerHour != 5 || def.Limits.PerDestinationPerDay != 10 ||
		def.Limits.DailyBudget != 500 || def.Limits.Countries != nil || def.Language != "en" {
		t.Errorf("tenant t read as %+v, want the safe defaults", def)
	}
	if strings.Join(nl.Limits.Countries, " ") != "31" || nl.CountryCode != "31" {
		t.Errorf("tenant nl: got country code %q, countries %v, want 31 and [31]", nl.CountryCode, nl.Limits.Countries)
	}
	dutch, _ := policy.Catalog("nl")
	if nl.Messages.TOTPPrompt != dutch.TOTPPrompt || nl.Messages.HomeIP != "Thuis-IP toegestaan" {
		t.Errorf("tenant nl: got prompt %q, home %q, want the Dutch prompt and its own home text", nl.Messages.TOTPPrompt, nl.Messages.HomeIP)
	}
	// No provider for sms, email or voice: the methods cannot be used,
	// which check-config points out.
	if w := s.deliveryWarnings(); len(w) != 6 || !strings.Contains(w[0], "tenant t allows sms, but delivery.sms names no provider") {
		t.Errorf("got warnings %q, want one per tenant and channel", w)
	}
}

func TestLoadConfigTenantGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`clients: [{name: gw, address: 127.0.0.1, secret: s, tenant: office-a}]
tenants:
  - name: offices
    mode: required
    methods: [totp, sms]
    code_ttl: 5m
    lockout: {failures: 3}
    messages: {office_ip: "Office", home_ip: "Home"}
  - {name: office-a, parent: offices, office_networks: [192.0.2.0/24], messages: {office_ip: "Office A"}}
  - {name: office-b, parent: office-a, mode: optional, code_ttl: 2m}
`), 0o600)
	s, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.tenants[1], s.tenants[2]
	if a.Name != "office-a" || a.Mode != policy.ModeRequired || a.CodeTTL != 5*time.Minute || a.Lockout.Failures != 3 ||
		len(a.OfficeNetworks) != 1 || strings.Join(a.Methods, ",") != "totp,sms" {
		t.Errorf("office-a read as %+v, want the group's settings and its own networks", a)
	}
	if a.Messages.OfficeIP != "Office A" || a.Messages.HomeIP != "Home" {
		t.Errorf("office-a messages: got office %q home %q, want its own and the group's", a.Messages.OfficeIP, a.Messages.HomeIP)
	}
	if b.Name != "office-b" || b.Mode != policy.ModeOptional || b.CodeTTL != 2*time.Minute || len(b.OfficeNetworks) != 1 || b.Messages.OfficeIP != "Office A" {
		t.Errorf("office-b read as %+v, want office-a's settings with its own mode and TTL", b)
	}
}

func TestLoadConfigTenantGroupMistakes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`clients: [{name: gw, address: 127.0.0.1, secret: s, tenant: a}]
tenants:
  - {name: a, parent: b}
  - {name: b, parent: a}
  - {name: c, parent: nowhere}
  - {name: d, ask_phone: true, lockout: {failures: -1}, remember_ip_for: -1h}
`), 0o600)
	_, err := loadConfig(path)
	for _, want := range []string{
		`tenants[1] (b).parent: "a" makes a loop: a -> b -> a`,
		`tenants[2] (c).parent: "nowhere" is not a configured tenant`,
		"tenants[3] (d).ask_phone: needs enrolment: true",
		"tenants[3] (d).lockout.failures: -1 is out of range",
		"tenants[3] (d).remember_ip_for: -1h0m0s is out of range",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestLoadConfigSecretFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "gw.secret"), []byte("s3cret-from-file\n"), 0o600)
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(`clients: [{name: gw, address: 127.0.0.1, secret_file: gw.secret, tenant: t}]
tenants: [{name: t}]
`), 0o600)
	s, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s.clients[0].Secret); got != "s3cret-from-file" {
		t.Errorf("got secret %q, want the file's first line", got)
	}
}

// TestLoadConfigBad checks that every problem is reported at once, each
// naming its key.
func TestLoadConfigBad(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"bad-keys.yml", []string{
			"radius.lisen: unknown key; did you mean listen?",
			"store.pathx: unknown key; did you mean path?",
			"clients[0].passwrd: unknown key; did you mean password?",
			"tenants[0].mdoe: unknown key; did you mean mode?",
		}},
		{"bad-duration.yml", []string{`tenants[0].code_ttl: "three minutes" is not a duration: write a number and a unit, such as 180s, 3m, 1h30m or 7d`}},
		{"bad-values.yml", []string{
			`radius.listen[0]: "nohost" is not host:port`,
			"radius.duplicate_window: 10m0s is out of range",
			"radius.max_concurrent_io: 9 is out of range, want 1 to radius.max_concurrent (8)",
			"radius.max_held_per_user: -1 is out of range, want 1 to 100000",
			`tenants[0] (t).mode: "sometimes" is not one of off, optional, required`,
			`tenants[0] (t).office_networks[0]: "192.0.2.0/33" is not an address or CIDR network`,
			`tenants[0] (t).methods[1]: "pigeon" is not one of totp, sms, email, voice`,
			"tenants[0] (t).code_digits: 9 is out of range, want 4 to 8",
			"tenants[0] (t).code_ttl: 1s is out of range, want 10s to 1h",
			"tenants[0] (t).reconnect_window: -1h0m0s is out of range",
			`tenants[0] (t).unknown_users: "maybe" is not one of reject, allow`,
			`clients[0].address: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?`,
			"clients[0].secret: is missing (give secret or secret_file)",
			`clients[0].tenant: "nope" is not a configured tenant`,
			`clients[0].client_ip_attribute: unknown attribute "Foo"`,
			`clients[0].password: "kerberos" is not one of gateway, local, ldap, radius`,
			"clients[1].secret: give secret or secret_file, not both",
			`clients[1].name: "gw" is used twice`,
		}},
		{"bad-delivery.yml", []string{
			`tenants[0] (t).language: "fr" has no messages; choose one of en, nl`,
			`tenants[0] (t).country_code: "310" is not a country calling code`,
			"tenants[0] (t).resend_cooldown: 1h0m0s is out of range",
			"tenants[0] (t).limits.sends_per_user_per_hour: -1 is out of range",
			`tenants[0] (t).limits.countries[1]: "abc" is not a country calling code`,
			`tenants[0] (t).messages: "nonsense" is not a message`,
			"delivery.providers[0] (a): http.url",
			`delivery.providers[1] (a).name: "a" is used twice`,
			`delivery.providers[1] (a): type: "pigeon" is not one of http, command, smtp`,
			"delivery.providers[2] (b): type http needs an http block",
			"delivery.providers[3] (c): smtp.tls",
			"delivery.providers[4] (d).timeout: 2m0s is out of range",
			"delivery.providers[4] (d).max_in_flight: -1 is out of range",
			`delivery.providers[4] (d): http.params[0]: "novalue" is not name=value`,
			"delivery.providers[5] (e): command.",
			`delivery.sms[1]: "nowhere" is not a provider`,
			"delivery.email: console writes codes to the log instead of sending them, and tenant t (tenants[0]) requires a code and allows email",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := loadConfig(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
