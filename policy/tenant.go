package policy

import (
	"net/netip"
	"slices"
	"time"

	"github.com/otpgate/otpgate/dictionary"
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
	MethodVoice = "voice"
)

// AllMethods lists every method, in the order the tenant default uses.
var AllMethods = []string{MethodTOTP, MethodSMS, MethodEmail, MethodVoice}

// IsMethod reports whether s names a method.
func IsMethod(s string) bool { return slices.Contains(AllMethods, s) }

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
	// ResendCooldown is how long after a send a user must wait before
	// "resend" sends another code; zero means no wait.
	ResendCooldown time.Duration
	// Limits cap what sending codes can cost.
	Limits Limits
	// Lockout locks a user out after too many wrong codes.
	Lockout Lockout
	// Enrolment lets a user with no method, but a phone number or e-mail
	// address on file, be enrolled to it at login by proving a code sent
	// there.
	Enrolment bool
	// AskPhone, with Enrolment, asks a user with nothing on file for a
	// mobile number in the challenge, and saves it once a code sent there
	// is proved.
	AskPhone bool
	// RememberIPFor is how long an IP a code was proved from is trusted
	// like a home IP; zero means not at all.
	RememberIPFor time.Duration
	// MaxRememberedIPs is how many such IPs a user keeps, the newest.
	MaxRememberedIPs int
	// PreapprovalWindow is how long a code proved on the sign-in page
	// lets the user's logins through gateways that cannot prompt; zero
	// means the sign-in page pre-approves nothing.
	PreapprovalWindow time.Duration
	// CountryCode is the country calling code ("31") of phone numbers
	// given without one; empty means numbers must carry their own.
	CountryCode string
	// Language is the tag of the message catalogue ("en", "nl") and of the
	// templates providers use; empty means "en".
	Language string
	// ReconnectWindow is how long a proved (user, IP) pair is trusted;
	// zero means never.
	ReconnectWindow time.Duration
	// CreateUsers adds a user the directory (first factor ldap or radius)
	// accepted but the store does not know, with the phone and e-mail the
	// directory gives.
	CreateUsers bool
	// AllowUnknownUsers treats a name that is not in the store as a user
	// without a second factor instead of rejecting it.
	AllowUnknownUsers bool
	// Messages are the texts users see.
	Messages Messages
	// Reply are the attributes every Accept of the tenant's users carries
	// (see Engine.replyFor for what else does).
	Reply []dictionary.Reply
	// GroupReplies are the attributes an Accept carries for each
	// directory group the user is in, by the group's name in lower case.
	GroupReplies map[string][]dictionary.Reply
	// RequiredGroups, when not empty, reject a user who is in none of
	// these directory groups before any code is sent.
	RequiredGroups []string
	// TimeZone is where the times shown to users are told; nil means the
	// server's.
	TimeZone *time.Location

	office networks // OfficeNetworks as a table, built by Reload
}

// Local is at in the tenant's time zone.
func (t *Tenant) Local(at time.Time) time.Time {
	if t == nil || t.TimeZone == nil {
		return at.Local()
	}
	return at.In(t.TimeZone)
}

// Limits cap the codes sent for one tenant. A zero count means no limit;
// the configuration fills in safe defaults.
type Limits struct {
	// PerUserPerHour is how many codes one user may be sent in an hour,
	// over all channels.
	PerUserPerHour int
	// PerDestinationPerDay is how many codes one phone number or mailbox
	// may receive in 24 hours.
	PerDestinationPerDay int
	// DailyBudget is how many paid messages (SMS and voice) the tenant may
	// send per UTC day.
	DailyBudget int
	// Countries are the country calling codes ("31") SMS and voice may go
	// to; empty means any.
	Countries []string
}

// Lockout says when wrong codes lock a user out. Zero Failures means never.
type Lockout struct {
	// Failures is how many wrong codes within Window lock the user.
	Failures int
	Window   time.Duration
	// Duration is how long the lock lasts.
	Duration time.Duration
}

// allows reports whether the tenant permits method.
func (t *Tenant) allows(method string) bool { return slices.Contains(t.Methods, method) }

// inOffice reports whether ip is in one of the tenant's office networks,
// looked up in the table Reload builds.
func (t *Tenant) inOffice(ip netip.Addr) bool {
	return t.office.contains(ip)
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
