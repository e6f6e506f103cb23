package radius

import (
	"fmt"
	"net/netip"
	"strings"

	"layeh.com/radius"
)

// Attribute types this package reads or writes.
const (
	typeUserName             radius.Type = 1
	typeUserPassword         radius.Type = 2
	typeFramedIPAddress      radius.Type = 8
	typeReplyMessage         radius.Type = 18
	typeVendorSpecific       radius.Type = 26
	typeState                radius.Type = 24
	typeCallingStationID     radius.Type = 31
	typeProxyState           radius.Type = 33
	typeTunnelClientEndpoint radius.Type = 66
	typeMessageAuthenticator radius.Type = 80
	typeFramedIPv6Address    radius.Type = 168
)

// IPSource finds the end user's address in a request.
type IPSource func(p *radius.Packet) netip.Addr

// IPSourceNames lists the attribute names an IPSource can be made from.
func IPSourceNames() []string {
	return []string{"Calling-Station-Id", "Tunnel-Client-Endpoint", "Framed-IP-Address", "Framed-IPv6-Address"}
}

// ParseIPSource returns the IPSource for an attribute name; the empty name
// gives nil (no source).
func ParseIPSource(name string) (IPSource, error) {
	if name == "" {
		return nil, nil
	}
	switch strings.ToLower(name) {
	case "calling-station-id":
		return textAttr(typeCallingStationID, false), nil
	case "tunnel-client-endpoint":
		return textAttr(typeTunnelClientEndpoint, true), nil
	case "framed-ip-address":
		return binaryAttr(typeFramedIPAddress, 4), nil
	case "framed-ipv6-address":
		return binaryAttr(typeFramedIPv6Address, 16), nil
	}
	return nil, fmt.Errorf("unknown attribute %q, want one of %s", name, strings.Join(IPSourceNames(), ", "))
}

func textAttr(t radius.Type, tagged bool) IPSource {
	return func(p *radius.Packet) netip.Addr {
		v, ok := p.Lookup(t)
		if !ok {
			return netip.Addr{}
		}
		if tagged && len(v) > 0 && v[0] <= 0x1f {
			v = v[1:] // RFC 2868 tag
		}
		return ParseEndpoint(string(v))
	}
}

func binaryAttr(t radius.Type, size int) IPSource {
	return func(p *radius.Packet) netip.Addr {
		v, ok := p.Lookup(t)
		if !ok || len(v) != size {
			return netip.Addr{}
		}
		a, _ := netip.AddrFromSlice(v)
		return a.Unmap()
	}
}

// ParseEndpoint reads an address as gateways write it: "203.0.113.9",
// "203.0.113.9:51234", "2001:db8::1", "[2001:db8::1]" or
// "[2001:db8::1]:443". Anything else, such as a MAC address, gives the
// zero Addr.
func ParseEndpoint(s string) netip.Addr {
	s = strings.TrimRight(strings.TrimSpace(s), "\x00")
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap()
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.WithZone("").Unmap()
		}
	}
	return netip.Addr{}
}
