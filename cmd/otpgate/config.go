package main

import (
	_ "time/tzdata" // tenants' time_zone on systems without a zone database

	"bytes"
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/phone"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/radius"
	"github.com/otpgate/otpgate/store"
)

// defaultsYAML is the configuration used when no --config is given: a
// server on loopback with a local test client and console delivery.
//
//go:embed defaults.yaml
var defaultsYAML []byte

// config is the YAML file, as written. Durations are Go durations ("3m").
type config struct {
	Radius   radiusConfig      `mapstructure:"radius"`
	Store    storeConfig       `mapstructure:"store"`
	Admin    adminConfig       `mapstructure:"admin"`
	Log      logConfig         `mapstructure:"log"`
	TOTP     totpConfig        `mapstructure:"totp"`
	Delivery deliveryConfig    `mapstructure:"delivery"`
	Web      webConfig         `mapstructure:"web"`
	LDAP     ldapConfig        `mapstructure:"ldap"`
	Audit    auditConfig       `mapstructure:"audit"`
	HTTP     metricsHTTPConfig `mapstructure:"http"`
	Clients  []clientConfig    `mapstructure:"clients"`
	Tenants  []tenantConfig    `mapstructure:"tenants"`
	Cluster  clusterConfig     `mapstructure:"cluster"`

	// dir is the directory relative paths are taken from: the config
	// file's own, or the working directory for the embedded defaults.
	dir string
	// inherit are the problems found resolving tenants' parents.
	inherit problems
}

type radiusConfig struct {
	Listen           []string       `mapstructure:"listen"`
	AccountingListen []string       `mapstructure:"accounting_listen"`
	Upstream         upstreamConfig `mapstructure:"upstream"`
	DuplicateWindow  time.Duration  `mapstructure:"duplicate_window"`
	MaxConcurrent    int            `mapstructure:"max_concurrent"`
	MaxConcurrentIO  int            `mapstructure:"max_concurrent_io"`
	MaxHeld          int            `mapstructure:"max_held"`
	MaxHeldPerClient int            `mapstructure:"max_held_per_client"`
	MaxHeldPerUser   int            `mapstructure:"max_held_per_user"`
	radsecConfig     `mapstructure:",squash"`
}

type upstreamConfig struct {
	Servers        []upstreamServerConfig `mapstructure:"servers"`
	Timeout        time.Duration          `mapstructure:"timeout"`
	PassAttributes *[]string              `mapstructure:"pass_attributes"`
	DropAttributes []string               `mapstructure:"drop_attributes"`
}

type upstreamServerConfig struct {
	Address    string `mapstructure:"address"`
	Secret     string `mapstructure:"secret"`
	SecretFile string `mapstructure:"secret_file"`
}

type storeConfig struct {
	Path    string     `mapstructure:"path"`
	KeyFile string     `mapstructure:"key_file"`
	Backend string     `mapstructure:"backend"`
	Etcd    etcdConfig `mapstructure:"etcd"`
}

type adminConfig struct {
	Socket string `mapstructure:"socket"`
}

type logConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

type metricsHTTPConfig struct {
	Listen *string `mapstructure:"listen"`
}

type auditConfig struct {
	Keep        *time.Duration `mapstructure:"keep"`
	ClusterKeep *time.Duration `mapstructure:"cluster_keep"`
}

type webConfig struct {
	Listen         string   `mapstructure:"listen"`
	PublicURL      string   `mapstructure:"public_url"`
	TLSCert        string   `mapstructure:"tls_cert"`
	TLSKey         string   `mapstructure:"tls_key"`
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	Tenant         string   `mapstructure:"tenant"`
	Password       string   `mapstructure:"password"`
}

type totpConfig struct {
	Issuer string `mapstructure:"issuer"`
}

type clientConfig struct {
	Name                        string        `mapstructure:"name"`
	Address                     string        `mapstructure:"address"`
	Secret                      string        `mapstructure:"secret"`
	SecretFile                  string        `mapstructure:"secret_file"`
	Tenant                      string        `mapstructure:"tenant"`
	RequireMessageAuthenticator *bool         `mapstructure:"require_message_authenticator"`
	ClientIPAttribute           []string      `mapstructure:"client_ip_attribute"`
	Password                    string        `mapstructure:"password"`
	StripDomain                 *bool         `mapstructure:"strip_domain"`
	StripRealm                  bool          `mapstructure:"strip_realm"`
	Profile                     string        `mapstructure:"profile"`
	OTPInPassword               string        `mapstructure:"otp_in_password"`
	OTPSeparator                string        `mapstructure:"otp_separator"`
	LimitProxyState             bool          `mapstructure:"limit_proxy_state"`
	TLSName                     string        `mapstructure:"tls_name"`
	Challenge                   *bool         `mapstructure:"challenge"`
	Hold                        time.Duration `mapstructure:"hold"`
	ReplyAttributes             []string      `mapstructure:"reply_attributes"`
	DisplayName                 string        `mapstructure:"display_name"`
}

type tenantConfig struct {
	Name            string            `mapstructure:"name"`
	Mode            string            `mapstructure:"mode"`
	OfficeNetworks  []string          `mapstructure:"office_networks"`
	Methods         []string          `mapstructure:"methods"`
	CodeDigits      int               `mapstructure:"code_digits"`
	CodeTTL         time.Duration     `mapstructure:"code_ttl"`
	MaxAttempts     int               `mapstructure:"max_attempts"`
	ReconnectWindow time.Duration     `mapstructure:"reconnect_window"`
	ResendCooldown  *time.Duration    `mapstructure:"resend_cooldown"`
	UnknownUsers    string            `mapstructure:"unknown_users"`
	Language        string            `mapstructure:"language"`
	CountryCode     string            `mapstructure:"country_code"`
	Limits          limitsConfig      `mapstructure:"limits"`
	Lockout         lockoutConfig     `mapstructure:"lockout"`
	Enrolment       bool              `mapstructure:"enrolment"`
	AskPhone        bool              `mapstructure:"ask_phone"`
	RememberIPFor   time.Duration     `mapstructure:"remember_ip_for"`
	MaxRemembered   int               `mapstructure:"max_remembered_ips"`
	Parent          string            `mapstructure:"parent"`
	CreateUsers     bool              `mapstructure:"create_users"`
	Preapproval     *time.Duration    `mapstructure:"preapproval_window"`
	Messages        map[string]string `mapstructure:"messages"`
	TimeZone        string            `mapstructure:"time_zone"`
	Replies         tenantReplies     `mapstructure:",squash"`
}

// tenantReplies are what a tenant's Accepts carry.
type tenantReplies struct {
	ReplyAttributes []string            `mapstructure:"reply_attributes"`
	GroupReplies    map[string][]string `mapstructure:"group_replies"`
	RequiredGroups  []string            `mapstructure:"required_groups"`
}

type lockoutConfig struct {
	Failures *int          `mapstructure:"failures"`
	Window   time.Duration `mapstructure:"window"`
	Duration time.Duration `mapstructure:"duration"`
}

type limitsConfig struct {
	SendsPerUserPerHour       int      `mapstructure:"sends_per_user_per_hour"`
	SendsPerDestinationPerDay int      `mapstructure:"sends_per_destination_per_day"`
	DailyBudget               int      `mapstructure:"daily_budget"`
	Countries                 []string `mapstructure:"countries"`
}

// webSettings are the web listener's, checked.
type webSettings struct {
	listen, publicURL, cert, key string
	trustedProxies               []netip.Prefix
	tenant                       string
	// password is the sign-in page's first factor: local, ldap, radius,
	// or none (no password; app and recovery codes only).
	password string
}

// settings is a checked configuration, in the types the packages take.
type settings struct {
	listen           []string
	duplicateWindow  time.Duration
	maxConcurrent    int
	maxIO            int
	holdLimits       policy.HoldLimits
	storePath        string
	keyFile          string
	adminSocket      string
	logLevel         string
	logFormat        string
	issuer           string
	delivery         deliveryConfig
	clients          []*radius.Client
	tenants          []policy.Tenant
	web              webSettings
	displayNames     map[string]string // clients' display_name, by name
	accountingListen []string
	upstream         *radius.Upstream
	auditKeep        time.Duration
	etcd             *store.Etcd // nil: the store is the bbolt file alone
	nodeName         string      // cluster.node_name, with etcd
	httpListen       string
	directory        policy.PasswordChecker
	radsec           radsecSettings

	// path is the file read; "" for the embedded defaults.
	path string
	// cfg is the file as read, for building the delivery providers.
	cfg *config
}

// loadConfig reads and checks a configuration file; path "" means the
// embedded defaults. Every problem found is reported, each naming its key.
func loadConfig(path string) (*settings, error) {
	s, more, err := readConfig(path)
	if err == nil && more != nil {
		err = fmt.Errorf("config %s:\n%w", orDefault(path, "embedded defaults"), more)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// readConfig is loadConfig for check-config, which goes on to look for
// more: it returns the settings as far as they could be checked, with the
// problems found (nil if none), or an error when the file cannot be read.
func readConfig(path string) (*settings, error, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	var c config
	name := "embedded defaults"
	if path == "" {
		if err := v.ReadConfig(bytes.NewReader(defaultsYAML)); err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", name, err)
		}
		c.dir = "."
	} else {
		name = path
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read config: %w", err)
		}
		if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
			return nil, nil, fmt.Errorf("read config %s: %w", path, err)
		}
		c.dir = filepath.Dir(path)
	}
	c.inherit = inheritTenants(v)
	// Unknown keys, values of the wrong type and values out of range are
	// all found in one pass, so that one run names every problem.
	var decoding problems
	unknownKeys(v.AllSettings(), reflect.TypeOf(c), "", &decoding)
	err := v.Unmarshal(&c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationHook,
		mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		decodeProblems(err, &decoding)
	}
	s, err := c.check()
	s.path = path
	return s, errors.Join(append(decoding, err)...), nil
}

// problems collects configuration mistakes, each naming its key.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("  %s: %s", key, fmt.Sprintf(format, args...)))
}

// check validates c and fills in defaults.
func (c *config) check() (*settings, error) {
	p := c.inherit
	s := &settings{
		listen:           c.Radius.Listen,
		duplicateWindow:  c.Radius.DuplicateWindow,
		maxConcurrent:    c.Radius.MaxConcurrent,
		storePath:        c.path(c.Store.Path),
		keyFile:          c.path(c.Store.KeyFile),
		adminSocket:      c.path(c.Admin.Socket),
		logLevel:         orDefault(c.Log.Level, "info"),
		logFormat:        orDefault(c.Log.Format, "text"),
		issuer:           orDefault(c.TOTP.Issuer, "otpgate"),
		delivery:         c.Delivery,
		cfg:              c,
		accountingListen: c.Radius.AccountingListen,
	}
	if len(s.listen) == 0 {
		s.listen = []string{"127.0.0.1:1812"}
	}
	if strings.Contains(s.issuer, ":") {
		// The otpauth label is issuer:account; apps split it at the first
		// colon, encoded or not, and would show a different issuer.
		p.add("totp.issuer", "%q has a colon, which authenticator apps take for the end of the issuer; leave it out, such as %q", s.issuer, strings.ReplaceAll(s.issuer, ":", ""))
	}
	for i, a := range s.listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.add(fmt.Sprintf("radius.listen[%d]", i), "%q is not host:port, for example 127.0.0.1:1812 or [::]:1812", a)
		}
	}
	for i, a := range s.accountingListen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.add(fmt.Sprintf("radius.accounting_listen[%d]", i), "%q is not host:port, for example 127.0.0.1:1813", a)
		}
	}
	s.upstream = c.checkUpstream(&p)
	s.httpListen = "127.0.0.1:9812"
	if c.HTTP.Listen != nil {
		s.httpListen = strings.TrimSpace(*c.HTTP.Listen)
	}
	if s.httpListen != "" {
		if _, _, err := net.SplitHostPort(s.httpListen); err != nil {
			p.add("http.listen", "%q is not host:port, for example 127.0.0.1:9812 (empty turns metrics off)", s.httpListen)
		}
	}
	s.auditKeep = 90 * 24 * time.Hour
	if c.Audit.Keep != nil {
		s.auditKeep = *c.Audit.Keep
	}
	if s.auditKeep < 0 {
		p.add("audit.keep", "%s is negative; 0 keeps the audit log forever", s.auditKeep)
	}
	s.directory = c.checkLDAP(&p)
	if s.duplicateWindow == 0 {
		s.duplicateWindow = 30 * time.Second
	}
	if s.duplicateWindow < 0 || s.duplicateWindow > 5*time.Minute {
		p.add("radius.duplicate_window", "%s is out of range, want up to 5m (RFC 5080 suggests 5s to 30s)", s.duplicateWindow)
	}
	if s.maxConcurrent < 0 {
		p.add("radius.max_concurrent", "must not be negative")
	}
	c.checkCapacity(s, &p)
	s.radsec = c.checkRadSec(&p)
	if c.Store.Path == "" {
		s.storePath = c.path("otpgate.db")
	}
	if c.Store.KeyFile == "" {
		s.keyFile = s.storePath + ".key"
	}
	if c.Admin.Socket == "" {
		s.adminSocket = s.storePath + ".sock"
	}
	c.checkStore(s, &p)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, s.logLevel) {
		p.add("log.level", "%q is not one of debug, info, warn, error", s.logLevel)
	}
	if !slices.Contains([]string{"text", "json"}, s.logFormat) {
		p.add("log.format", "%q is not one of text, json", s.logFormat)
	}
	tenants := map[string]bool{}
	for i, tc := range c.Tenants {
		t := c.checkTenant(fmt.Sprintf("tenants[%d]", i), tc, &p)
		if tenants[t.Name] {
			p.add(fmt.Sprintf("tenants[%d].name", i), "%q is used twice", t.Name)
		}
		tenants[t.Name] = true
		s.tenants = append(s.tenants, t)
	}
	if len(c.Tenants) == 0 {
		p.add("tenants", "at least one tenant is needed")
	}
	c.checkDelivery(s.tenants, &p)

	names := map[string]bool{}
	type where struct {
		prefix  netip.Prefix
		tlsName string
	}
	prefixes := map[where]string{}
	for i, cc := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		cl := c.checkClient(key, cc, tenants, &p)
		if names[cl.Name] {
			p.add(key+".name", "%q is used twice", cl.Name)
		}
		names[cl.Name] = true
		w := where{cl.Prefix, strings.ToLower(cl.TLSName)}
		if other, dup := prefixes[w]; dup && cl.Prefix.IsValid() {
			p.add(key+".address", "%s is also the address of client %s", cl.Prefix, other)
		}
		prefixes[w] = cl.Name
		s.clients = append(s.clients, cl)
		if cc.DisplayName != "" {
			if s.displayNames == nil {
				s.displayNames = map[string]string{}
			}
			s.displayNames[cl.Name] = strings.TrimSpace(cc.DisplayName)
		}
	}
	if len(c.Clients) == 0 {
		p.add("clients", "at least one client (gateway) is needed")
	}
	ldapClient := slices.ContainsFunc(s.clients, func(cl *radius.Client) bool { return cl.FirstFactor == policy.FirstFactorLDAP })
	for i, t := range s.tenants {
		if (len(t.RequiredGroups) > 0 || len(t.GroupReplies) > 0) && !ldapClient {
			p.add(fmt.Sprintf("tenants[%d] (%s)", i, t.Name), "group_replies and required_groups need the directory's groups, which only a client with password: ldap reads, and there is none")
		}
	}
	c.checkRadSecClients(s, &p)
	s.web = c.checkWeb(s, tenants, &p)
	return s, errors.Join(p...)
}

// checkCapacity fills in how the request workers are shared: the share that
// may wait on I/O (three quarters of max_concurrent by default, so that a
// quarter stays for requests that need none), and the caps on held logins.
func (c *config) checkCapacity(s *settings, p *problems) {
	rc := c.Radius
	workers := cmp.Or(s.maxConcurrent, 256)
	s.maxIO = cmp.Or(rc.MaxConcurrentIO, max(1, workers*3/4))
	if s.maxIO < 1 || s.maxIO > workers {
		p.add("radius.max_concurrent_io", "%d is out of range, want 1 to radius.max_concurrent (%d), and less to keep workers for requests that need no I/O", s.maxIO, workers)
	}
	s.holdLimits = policy.HoldLimits{
		PerUser:   cmp.Or(rc.MaxHeldPerUser, 10),
		PerClient: cmp.Or(rc.MaxHeldPerClient, 500),
		Total:     cmp.Or(rc.MaxHeld, 1000),
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"radius.max_held", s.holdLimits.Total}, {"radius.max_held_per_client", s.holdLimits.PerClient}, {"radius.max_held_per_user", s.holdLimits.PerUser}} {
		if f.v < 1 || f.v > 100_000 {
			p.add(f.key, "%d is out of range, want 1 to 100000", f.v)
		}
	}
}

func (c *config) checkClient(key string, cc clientConfig, tenants map[string]bool, p *problems) *radius.Client {
	switch cc.Profile {
	case "":
	case "rdgateway":
		// RD Gateway through NPS: no password, DOMAIN\user names, no
		// challenge prompt, and NPS gives up after 60 seconds at most.
		if cc.Challenge == nil {
			no := false
			cc.Challenge = &no
		}
		if cc.StripDomain == nil {
			yes := true
			cc.StripDomain = &yes
		}
		if cc.Password == "" {
			cc.Password = policy.FirstFactorGateway
		}
	default:
		p.add(key+".profile", "%q is not a profile; the one there is: rdgateway", cc.Profile)
	}
	cl := &radius.Client{
		Name:                        cc.Name,
		Tenant:                      cc.Tenant,
		RequireMessageAuthenticator: cc.RequireMessageAuthenticator == nil || *cc.RequireMessageAuthenticator,
		FirstFactor:                 orDefault(cc.Password, policy.FirstFactorGateway),
		StripDomain:                 cc.StripDomain == nil || *cc.StripDomain,
		StripRealm:                  cc.StripRealm,
		NoChallenge:                 cc.Challenge != nil && !*cc.Challenge,
		Hold:                        cc.Hold,
	}
	if cc.Hold < 0 || cc.Hold > 10*time.Minute {
		p.add(key+".hold", "%s is out of range, want up to 10m (NPS waits 60s at most)", cc.Hold)
	}
	if cc.Name == "" {
		p.add(key+".name", "is missing")
	}
	if pr, err := parsePrefix(cc.Address); err != nil {
		p.add(key+".address", "%v", err)
	} else {
		cl.Prefix = pr
	}
	if cc.TLSName != "" {
		if err := radius.CheckTLSName(cc.TLSName); err != nil {
			p.add(key+".tls_name", "%v", err)
		}
		cl.TLSName = cc.TLSName
		if cc.Secret == "" && cc.SecretFile == "" {
			cc.Secret = radius.TLSSecret // RFC 6614's fixed secret
		}
	}
	switch {
	case cc.Secret != "" && cc.SecretFile != "":
		p.add(key+".secret", "give secret or secret_file, not both")
	case cc.SecretFile != "":
		cl.Secret = readSecretFile(c.path(cc.SecretFile), key+".secret_file", p)
	case cc.Secret != "":
		cl.Secret = []byte(cc.Secret)
	default:
		p.add(key+".secret", "is missing (give secret or secret_file)")
	}
	if !tenants[cc.Tenant] {
		p.add(key+".tenant", "%q is not a configured tenant", cc.Tenant)
	}
	var src radius.IPSource
	var err error
	if len(cc.ClientIPAttribute) == 1 {
		src, err = radius.ParseIPSource(strings.TrimSpace(cc.ClientIPAttribute[0]))
	} else {
		src, err = radius.ParseIPSources(cc.ClientIPAttribute)
	}
	if err != nil {
		p.add(key+".client_ip_attribute", "%v", err)
	}
	cl.ClientIP = src
	if !slices.Contains([]string{policy.FirstFactorGateway, policy.FirstFactorLocal, policy.FirstFactorLDAP, policy.FirstFactorRADIUS}, cl.FirstFactor) {
		p.add(key+".password", "%q is not one of gateway, local, ldap, radius", cc.Password)
	}
	if cl.FirstFactor == policy.FirstFactorRADIUS && len(c.Radius.Upstream.Servers) == 0 {
		p.add(key+".password", "radius needs upstream servers under radius.upstream.servers")
	}
	if cl.FirstFactor == policy.FirstFactorLDAP && len(c.LDAP.Servers) == 0 {
		p.add(key+".password", "ldap needs a directory under ldap.servers")
	}
	switch cc.OTPInPassword {
	case "":
	case policy.CodeAppend:
		cl.CodeInPassword, cl.CodeSeparator = policy.CodeAppend, cc.OTPSeparator
	default:
		p.add(key+".otp_in_password", "%q is not append (or leave it out)", cc.OTPInPassword)
	}
	if cc.OTPSeparator != "" && cc.OTPInPassword == "" {
		p.add(key+".otp_separator", "only means something with otp_in_password: append")
	}
	cl.LimitProxyState = cc.LimitProxyState
	cl.Reply = replyAttributes(key+".reply_attributes", cc.ReplyAttributes, p)
	return cl
}

// replyAttributes checks a list of "Name=value" reply attributes.
func replyAttributes(key string, list []string, p *problems) []dictionary.Reply {
	var out []dictionary.Reply
	for i, s := range list {
		r, err := dictionary.ParseReply(s)
		if err != nil {
			p.add(fmt.Sprintf("%s[%d]", key, i), "%v", err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// maxMessage is the most bytes a message may have: enough for a
// paragraph, and room in a 4096-byte answer for two joined together.
const maxMessage = 1000

func (c *config) checkTenant(key string, tc tenantConfig, p *problems) policy.Tenant {
	t := policy.Tenant{
		Name:            tc.Name,
		Mode:            policy.Mode(orDefault(tc.Mode, string(policy.ModeRequired))),
		Methods:         tc.Methods,
		CodeDigits:      tc.CodeDigits,
		CodeTTL:         tc.CodeTTL,
		MaxAttempts:     tc.MaxAttempts,
		ReconnectWindow: tc.ReconnectWindow,
		ResendCooldown:  30 * time.Second,
		Language:        orDefault(tc.Language, "en"),
		CountryCode:     strings.TrimPrefix(strings.TrimSpace(tc.CountryCode), "+"),
	}
	if tc.Name == "" {
		p.add(key+".name", "is missing")
	} else {
		key = fmt.Sprintf("%s (%s)", key, tc.Name)
	}
	if !slices.Contains([]policy.Mode{policy.ModeOff, policy.ModeOptional, policy.ModeRequired}, t.Mode) {
		p.add(key+".mode", "%q is not one of off, optional, required", tc.Mode)
	}
	for i, n := range tc.OfficeNetworks {
		pr, err := parsePrefix(n)
		if err != nil {
			p.add(fmt.Sprintf("%s.office_networks[%d]", key, i), "%v", err)
			continue
		}
		t.OfficeNetworks = append(t.OfficeNetworks, pr)
	}
	if len(t.Methods) == 0 {
		t.Methods = slices.Clone(policy.AllMethods)
	}
	for i, m := range t.Methods {
		if !policy.IsMethod(m) {
			p.add(fmt.Sprintf("%s.methods[%d]", key, i), "%q is not one of %s", m, strings.Join(policy.AllMethods, ", "))
		}
	}
	if t.CodeDigits == 0 {
		t.CodeDigits = 6
	}
	if t.CodeDigits < 4 || t.CodeDigits > 8 {
		p.add(key+".code_digits", "%d is out of range, want 4 to 8", t.CodeDigits)
	}
	if t.CodeTTL == 0 {
		t.CodeTTL = 3 * time.Minute
	}
	if t.CodeTTL < 10*time.Second || t.CodeTTL > time.Hour {
		p.add(key+".code_ttl", "%s is out of range, want 10s to 1h", t.CodeTTL)
	}
	if t.MaxAttempts == 0 {
		t.MaxAttempts = 3
	}
	if t.MaxAttempts < 1 || t.MaxAttempts > 10 {
		p.add(key+".max_attempts", "%d is out of range, want 1 to 10", t.MaxAttempts)
	}
	if t.ReconnectWindow < 0 || t.ReconnectWindow > 30*24*time.Hour {
		p.add(key+".reconnect_window", "%s is out of range, want 0 (off) to 720h", t.ReconnectWindow)
	}
	if tc.ResendCooldown != nil {
		t.ResendCooldown = *tc.ResendCooldown
	}
	if t.ResendCooldown < 0 || t.ResendCooldown > 10*time.Minute {
		p.add(key+".resend_cooldown", "%s is out of range, want 0 (none) to 10m", t.ResendCooldown)
	}
	switch tc.UnknownUsers {
	case "", "reject":
	case "allow":
		t.AllowUnknownUsers = true
	default:
		p.add(key+".unknown_users", "%q is not one of reject, allow", tc.UnknownUsers)
	}
	if t.CountryCode != "" && !phone.ValidCountryCode(t.CountryCode) {
		p.add(key+".country_code", "%q is not a country calling code such as 31 or 1", tc.CountryCode)
	}
	t.Limits = checkLimits(key+".limits", tc.Limits, t.CountryCode, p)
	t.Lockout = policy.Lockout{Failures: 5, Window: cmp.Or(tc.Lockout.Window, 15*time.Minute), Duration: cmp.Or(tc.Lockout.Duration, 15*time.Minute)}
	if tc.Lockout.Failures != nil {
		t.Lockout.Failures = *tc.Lockout.Failures
	}
	if t.Lockout.Failures < 0 || t.Lockout.Failures > 100 {
		p.add(key+".lockout.failures", "%d is out of range, want 0 (never lock) to 100", t.Lockout.Failures)
	}
	if t.Lockout.Window < 0 || t.Lockout.Window > 24*time.Hour {
		p.add(key+".lockout.window", "%s is out of range, want up to 24h", t.Lockout.Window)
	}
	if t.Lockout.Duration < 0 || t.Lockout.Duration > 30*24*time.Hour {
		p.add(key+".lockout.duration", "%s is out of range, want up to 720h", t.Lockout.Duration)
	}
	t.PreapprovalWindow = 5 * time.Minute
	if tc.Preapproval != nil {
		t.PreapprovalWindow = *tc.Preapproval
	}
	if t.PreapprovalWindow < 0 || t.PreapprovalWindow > 24*time.Hour {
		p.add(key+".preapproval_window", "%s is out of range, want 0 (off) to 24h", t.PreapprovalWindow)
	}
	t.Enrolment, t.AskPhone, t.CreateUsers = tc.Enrolment, tc.AskPhone, tc.CreateUsers
	if t.AskPhone && !t.Enrolment {
		p.add(key+".ask_phone", "needs enrolment: true")
	}
	t.RememberIPFor, t.MaxRememberedIPs = tc.RememberIPFor, cmp.Or(tc.MaxRemembered, 3)
	if t.RememberIPFor < 0 || t.RememberIPFor > 365*24*time.Hour {
		p.add(key+".remember_ip_for", "%s is out of range, want 0 (off) to 8760h", t.RememberIPFor)
	}
	if t.MaxRememberedIPs < 1 || t.MaxRememberedIPs > 100 {
		p.add(key+".max_remembered_ips", "%d is out of range, want 1 to 100", t.MaxRememberedIPs)
	}

	if tc.TimeZone != "" {
		loc, err := time.LoadLocation(tc.TimeZone)
		if err != nil || tc.TimeZone == "Local" {
			p.add(key+".time_zone", "%q is not an IANA time zone name such as Europe/Amsterdam", tc.TimeZone)
		} else {
			t.TimeZone = loc
		}
	}
	msgs, ok := policy.Catalog(t.Language)
	if !ok {
		p.add(key+".language", "%q has no messages; choose one of %s", tc.Language, strings.Join(policy.Languages(), ", "))
		msgs = policy.DefaultMessages()
	}
	for _, name := range slices.Sorted(maps.Keys(tc.Messages)) {
		if !msgs.Set(name, tc.Messages[name]) {
			p.add(key+".messages", "%q is not a message; the messages are %s", name, strings.Join(policy.MessageKeys(), ", "))
		}
	}
	t.Messages = msgs
	t.Reply = replyAttributes(key+".reply_attributes", tc.Replies.ReplyAttributes, p)
	t.GroupReplies, t.RequiredGroups = checkGroups(key, tc, p)
	all := t.Messages.All()
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if msg := all[name]; len(msg) > maxMessage {
			p.add(key+".messages."+name, "is %d bytes, want at most %d (a text goes over several Reply-Messages of 253 bytes, and the whole answer must fit in 4096)", len(msg), maxMessage)
		}
	}
	return t
}

// checkUpstream checks the upstream RADIUS servers of first factor radius.
func (c *config) checkUpstream(p *problems) *radius.Upstream {
	uc := c.Radius.Upstream
	if len(uc.Servers) == 0 {
		return nil
	}
	u := &radius.Upstream{Timeout: cmp.Or(uc.Timeout, 5*time.Second)}
	keys := func(key string, names []string) []dictionary.Key {
		out := []dictionary.Key{}
		for i, n := range names {
			d, err := dictionary.Lookup(n)
			if err != nil {
				p.add(fmt.Sprintf("%s[%d]", key, i), "%v", err)
				continue
			}
			out = append(out, d.Key())
		}
		return out
	}
	if uc.PassAttributes != nil {
		u.Pass = keys("radius.upstream.pass_attributes", *uc.PassAttributes)
	}
	u.Drop = keys("radius.upstream.drop_attributes", uc.DropAttributes)
	if u.Timeout < 0 || u.Timeout > time.Minute {
		p.add("radius.upstream.timeout", "%s is out of range, want up to 1m", uc.Timeout)
	}
	for i, sc := range uc.Servers {
		key := fmt.Sprintf("radius.upstream.servers[%d]", i)
		addr := sc.Address
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(addr, "1812")
			if _, _, err := net.SplitHostPort(addr); err != nil || sc.Address == "" {
				p.add(key+".address", "%q is not host or host:port", sc.Address)
			}
		}
		var secret []byte
		switch {
		case sc.Secret != "" && sc.SecretFile != "":
			p.add(key+".secret", "give secret or secret_file, not both")
		case sc.SecretFile != "":
			secret = readSecretFile(c.path(sc.SecretFile), key+".secret_file", p)
		case sc.Secret != "":
			secret = []byte(sc.Secret)
		default:
			p.add(key+".secret", "is missing (give secret or secret_file)")
		}
		u.Servers = append(u.Servers, radius.UpstreamServer{Addr: addr, Secret: secret})
	}
	return u
}

// checkWeb checks the web listener: needed for approval links when a
// client cannot prompt.
func (c *config) checkWeb(s *settings, tenants map[string]bool, p *problems) webSettings {
	w := webSettings{
		listen: c.Web.Listen, publicURL: strings.TrimRight(c.Web.PublicURL, "/"),
		cert: c.path(c.Web.TLSCert), key: c.path(c.Web.TLSKey), tenant: c.Web.Tenant,
		password: orDefault(c.Web.Password, policy.FirstFactorNone),
	}
	switch w.password {
	case policy.FirstFactorNone, policy.FirstFactorLocal:
	case policy.FirstFactorLDAP:
		if len(c.LDAP.Servers) == 0 {
			p.add("web.password", "ldap needs a directory under ldap.servers")
		}
	case policy.FirstFactorRADIUS:
		if len(c.Radius.Upstream.Servers) == 0 {
			p.add("web.password", "radius needs upstream servers under radius.upstream.servers")
		}
	default:
		p.add("web.password", "%q is not one of local, ldap, radius, none (the sign-in page cannot trust a gateway)", c.Web.Password)
	}
	if w.listen != "" {
		if _, _, err := net.SplitHostPort(w.listen); err != nil {
			p.add("web.listen", "%q is not host:port, for example 0.0.0.0:8443", w.listen)
		}
		if w.publicURL == "" {
			p.add("web.public_url", "is missing: links in messages need the address users open, such as https://otp.example.com")
		}
	}
	if w.publicURL != "" {
		u, err := url.Parse(w.publicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.add("web.public_url", "%q is not an http(s) URL such as https://otp.example.com", c.Web.PublicURL)
		}
	}
	if (c.Web.TLSCert == "") != (c.Web.TLSKey == "") {
		p.add("web.tls_cert", "give tls_cert and tls_key together, or neither (plain, behind a reverse proxy)")
	}
	for i, tp := range c.Web.TrustedProxies {
		pr, err := parsePrefix(tp)
		if err != nil {
			p.add(fmt.Sprintf("web.trusted_proxies[%d]", i), "%v", err)
			continue
		}
		w.trustedProxies = append(w.trustedProxies, pr)
	}
	if w.tenant == "" && len(s.tenants) > 0 {
		w.tenant = s.tenants[0].Name
	}
	if w.tenant != "" && !tenants[w.tenant] {
		p.add("web.tenant", "%q is not a configured tenant", w.tenant)
	}
	for i, cl := range s.clients {
		if cl.Name == "web" && w.listen != "" {
			p.add(fmt.Sprintf("clients[%d].name", i), "%q is the sign-in page's name in the audit log; choose another", cl.Name)
		}
		if cl.NoChallenge && w.listen == "" {
			p.add(fmt.Sprintf("clients[%d].challenge", i), "client %s cannot prompt, so its users approve logins on otpgate's web page: set web.listen and web.public_url", cl.Name)
		}
	}
	return w
}

// inheritTenants gives each tenant that names a parent the parent's
// settings it does not set itself, before the file is decoded: maps (such
// as messages and limits) are merged key by key, anything else is taken
// whole. A parent may have a parent of its own.
func inheritTenants(v *viper.Viper) problems {
	list, ok := v.Get("tenants").([]any)
	if !ok {
		return nil
	}
	var p problems
	byName := map[string]map[string]any{}
	index := map[string]int{}
	for i, t := range list {
		if m, ok := t.(map[string]any); ok {
			if n, ok := m["name"].(string); ok {
				byName[n], index[n] = m, i
			}
		}
	}
	resolved := map[string]map[string]any{}
	var resolve func(i int, m map[string]any, seen []string) map[string]any
	resolve = func(i int, m map[string]any, seen []string) map[string]any {
		name, _ := m["name"].(string)
		if r, ok := resolved[name]; ok && name != "" {
			return r
		}
		parent, _ := m["parent"].(string)
		if parent == "" {
			return m
		}
		key := fmt.Sprintf("tenants[%d]", i)
		if name != "" {
			key = fmt.Sprintf("%s (%s)", key, name)
		}
		pm, ok := byName[parent]
		switch {
		case !ok:
			p.add(key+".parent", "%q is not a configured tenant", parent)
			return m
		case slices.Contains(seen, parent):
			p.add(key+".parent", "%q makes a loop: %s", parent, strings.Join(append(seen, parent), " -> "))
			return m
		}
		merged := merge(resolve(index[parent], pm, append(seen, parent)), m)
		merged["name"] = m["name"]
		if name != "" {
			resolved[name] = merged
		}
		return merged
	}
	out := make([]any, len(list))
	for i, t := range list {
		m, ok := t.(map[string]any)
		if !ok {
			out[i] = t
			continue
		}
		name, _ := m["name"].(string)
		out[i] = resolve(i, m, []string{name})
	}
	v.Set("tenants", out)
	return p
}

// merge returns base overlaid with over; nested maps are merged too.
func merge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, bok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook {
			out[k] = merge(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}

// checkLimits fills in the send limits, safe by default: five codes per
// user an hour, ten per phone number or mailbox a day, 500 paid messages
// per tenant a day, and SMS and voice only to the tenant's own country.
func checkLimits(key string, lc limitsConfig, country string, p *problems) policy.Limits {
	l := policy.Limits{
		PerUserPerHour:       cmp.Or(lc.SendsPerUserPerHour, 5),
		PerDestinationPerDay: cmp.Or(lc.SendsPerDestinationPerDay, 10),
		DailyBudget:          cmp.Or(lc.DailyBudget, 500),
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"sends_per_user_per_hour", l.PerUserPerHour}, {"sends_per_destination_per_day", l.PerDestinationPerDay}, {"daily_budget", l.DailyBudget}} {
		if f.v < 1 || f.v > 1_000_000 {
			p.add(key+"."+f.name, "%d is out of range, want 1 to 1000000", f.v)
		}
	}
	for i, cc := range lc.Countries {
		cc = strings.TrimPrefix(strings.TrimSpace(cc), "+")
		if !phone.ValidCountryCode(cc) {
			p.add(fmt.Sprintf("%s.countries[%d]", key, i), "%q is not a country calling code such as 31 or 1", lc.Countries[i])
			continue
		}
		l.Countries = append(l.Countries, cc)
	}
	if len(lc.Countries) == 0 && country != "" {
		l.Countries = []string{country}
	}
	return l
}

// parsePrefix reads an address (a single host) or a network.
func parsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("is missing")
	}
	if pr, err := netip.ParsePrefix(s); err == nil {
		if pr != pr.Masked() {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, pr.Masked())
		}
		return pr, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR network such as 192.0.2.0/24", s)
}

// path resolves a file name from the config against the config's directory.
func (c *config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return strings.TrimSpace(s)
}
