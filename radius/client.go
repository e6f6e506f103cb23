package radius

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/dictionary"
)

// Client is one gateway allowed to send requests.
type Client struct {
	// Name identifies the gateway in logs and the audit log.
	Name string
	// Prefix is the address or network the gateway's packets come from.
	Prefix netip.Prefix
	// Secret is the RADIUS shared secret; over TLS "radsec" (RFC 6614).
	Secret []byte
	// TLSName, when set, makes this a RadSec client: its requests come
	// over TLS from a certificate whose name matches this pattern (see
	// MatchTLSName), and from Prefix; it is never matched to UDP packets.
	// "" means a UDP client.
	TLSName string
	// Tenant is the organisation for users who have none of their own.
	Tenant string
	// RequireMessageAuthenticator drops Access-Requests that carry no
	// Message-Authenticator. A wrong one is dropped either way.
	RequireMessageAuthenticator bool
	// ClientIP says where the end user's address is in a request; nil
	// means the gateway sends none and no trusted place can match.
	ClientIP IPSource
	// FirstFactor is "gateway" (the gateway checked the password) or
	// "local" (check it against the store).
	FirstFactor string
	// StripDomain turns "DOMAIN\user" into "user".
	StripDomain bool
	// StripRealm turns "user@realm" into "user".
	StripRealm bool
	// NoChallenge marks a gateway that cannot show an Access-Challenge
	// (Microsoft RD Gateway through NPS): instead of challenging, the
	// login is held while the user approves it out of band.
	NoChallenge bool
	// Hold is how long such a login is held; zero means the policy's default.
	Hold time.Duration
	// LimitProxyState drops Access-Requests that carry a Proxy-State but
	// no Message-Authenticator, as FreeRADIUS 3.2.5 does: such a request
	// from a NAS is a sign of the BlastRADIUS attack.
	LimitProxyState bool
	// CodeInPassword is "append" for gateways that cannot prompt but send
	// a password: the code follows it in User-Password; "" means not.
	CodeInPassword string
	// CodeSeparator, when set, stands between password and code.
	CodeSeparator string
	// Reply are the attributes every Accept through this gateway carries
	// (over the tenant's; a user's own go over them).
	Reply []dictionary.Reply
}

// UserName applies the client's name rules to a User-Name.
func (c *Client) UserName(name string) string {
	if c.StripDomain {
		if i := strings.LastIndexByte(name, '\\'); i >= 0 {
			name = name[i+1:]
		}
	}
	if c.StripRealm {
		if i := strings.LastIndexByte(name, '@'); i >= 0 {
			name = name[:i]
		}
	}
	return name
}

// Clients finds the client a packet came from. The most specific prefix
// that contains the source address wins.
type Clients struct {
	list []*Client // UDP clients, most specific first
	tls  []*Client // RadSec clients, most specific first, exact names before patterns
}

// NewClients indexes clients for lookup.
func NewClients(clients []*Client) *Clients {
	cs := &Clients{}
	for _, c := range clients {
		if c.TLSName != "" {
			cs.tls = append(cs.tls, c)
		} else {
			cs.list = append(cs.list, c)
		}
	}
	slices.SortStableFunc(cs.list, func(a, b *Client) int { return b.Prefix.Bits() - a.Prefix.Bits() })
	slices.SortStableFunc(cs.tls, func(a, b *Client) int {
		if d := b.Prefix.Bits() - a.Prefix.Bits(); d != 0 {
			return d
		}
		return strings.Count(a.TLSName, "*") - strings.Count(b.TLSName, "*")
	})
	return cs
}

// Lookup returns the UDP client for addr, or nil when addr belongs to none.
func (cs *Clients) Lookup(addr netip.Addr) *Client {
	addr = addr.Unmap()
	for _, c := range cs.list {
		if c.Prefix.Contains(addr) {
			return c
		}
	}
	return nil
}

// LookupTLS returns the RadSec client for a connection from addr whose
// certificate carries names (see CertNames), or nil when none has both.
func (cs *Clients) LookupTLS(addr netip.Addr, names []string) *Client {
	addr = addr.Unmap()
	for _, c := range cs.tls {
		if !c.Prefix.Contains(addr) {
			continue
		}
		for _, n := range names {
			if MatchTLSName(c.TLSName, n) {
				return c
			}
		}
	}
	return nil
}

// HasTLS reports whether any client is a RadSec client.
func (cs *Clients) HasTLS() bool { return len(cs.tls) > 0 }
