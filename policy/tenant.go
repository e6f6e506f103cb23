package policy

import (
	"net/netip"
	"slices"
	"time"
)

// Mode is how a tenant uses the second factor.
type Mode string

// The tenant modes.
const (
	// ModeOff accepts every user who passes the first factor.
	ModeOff Mode = "off"
	// ModeOptional asks a code of users who have a second factor and lets
	// the others through.
	ModeOptional Mode = "optional"
	// ModeRequired asks every user for a code and rejects users who have no
	// second factor.
	ModeRequired Mode = "required"
)

// Methods a user can prove themselves with.
const (
	MethodTOTP  = "totp"
	MethodSMS   = "sms"
	MethodEmail = "email"
)

// Tenant is one organisation's settings.
type Tenant struct {
	Name string
	Mode Mode
	// OfficeNetworks are the organisation's own networks; a login from one
	// is accepted without a code.
	OfficeNetworks []netip.Prefix
	// Methods are the second factors this tenant allows, in order of
	// preference for users whose own primary method cannot be used.
	Methods []string
	// CodeDigits is the length of sent codes (4 to 8).
	CodeDigits int
	// CodeTTL is how long a challenge can be answered.
	CodeTTL time.Duration
	// MaxAttempts is how many wrong answers end a challenge.
	MaxAttempts int
	// ReconnectWindow is how long a proved (user, IP) pair is trusted;
	// zero means never.
	ReconnectWindow time.Duration
	// AllowUnknownUsers treats a name that is not in the store as a user
	// without a second factor instead of rejecting it.
	AllowUnknownUsers bool
	// Messages are the texts users see.
	Messages Messages
}

// Messages are the texts shown to users in Reply-Message. In them
// {destination} is the masked address a code was sent to, {tries} the
// number of attempts left, {code} the code (only in CodeText, which is
// what is sent).
type Messages struct {
	OfficeIP       string
	HomeIP         string
	Reconnected    string
	TOTPPrompt     string
	CodeSent       string
	CodeText       string
	WrongCode      string
	TooManyWrong   string
	CodeExpired    string
	NoSecondFactor string
	DeliveryFailed string
	BadPassword    string
	Unavailable    string
}

// DefaultMessages are the texts used where a tenant sets none.
func DefaultMessages() Messages {
	return Messages{
		OfficeIP:       "HQ IP Allowed!",
		HomeIP:         "Home IP Allowed!",
		Reconnected:    "Reconnected",
		TOTPPrompt:     "Enter the code from your authenticator app",
		CodeSent:       "Enter the code sent to {destination}",
		CodeText:       "Your login code is {code}",
		WrongCode:      "Wrong code, {tries} tries left",
		TooManyWrong:   "Wrong code. Please log in again.",
		CodeExpired:    "Your code has expired. Please log in again.",
		NoSecondFactor: "Two-factor authentication is required but not set up for your account. Contact your administrator.",
		DeliveryFailed: "Your code could not be sent. Please try again later or contact your administrator.",
		BadPassword:    "Wrong user name or password",
		Unavailable:    "Login is unavailable at the moment. Please try again later.",
	}
}

// allows reports whether the tenant permits method.
func (t *Tenant) allows(method string) bool { return slices.Contains(t.Methods, method) }

// inOffice reports whether ip is in one of the tenant's office networks.
func (t *Tenant) inOffice(ip netip.Addr) bool {
	return containsAddr(t.OfficeNetworks, ip)
}

func containsAddr(prefixes []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// All returns every message by its configuration key.
func (m Messages) All() map[string]string {
	return map[string]string{
		"office_ip": m.OfficeIP, "home_ip": m.HomeIP, "reconnected": m.Reconnected,
		"totp_prompt": m.TOTPPrompt, "code_sent": m.CodeSent, "code_text": m.CodeText,
		"wrong_code": m.WrongCode, "too_many_wrong": m.TooManyWrong, "code_expired": m.CodeExpired,
		"no_second_factor": m.NoSecondFactor, "delivery_failed": m.DeliveryFailed,
		"bad_password": m.BadPassword, "unavailable": m.Unavailable,
	}
}
