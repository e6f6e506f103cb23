package radius

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"layeh.com/radius"
)

// Attribute types this package reads or writes.
const (
	typeUserName             radius.Type = 1
	typeUserPassword         radius.Type = 2
	typeNASIdentifier        radius.Type = 32
	typeFramedIPAddress      radius.Type = 8
	typeReplyMessage         radius.Type = 18
	typeVendorSpecific       radius.Type = 26
	typeState                radius.Type = 24
	typeClass                radius.Type = 25
	typeSessionTimeout       radius.Type = 27
	typeCallingStationID     radius.Type = 31
	typeProxyState           radius.Type = 33
	typeAcctStatusType       radius.Type = 40
	typeAcctSessionID        radius.Type = 44
	typeTunnelClientEndpoint radius.Type = 66
	typePrompt               radius.Type = 76
	typeMessageAuthenticator radius.Type = 80
	typeFramedIPv6Address    radius.Type = 168
)

// IPSource finds the end user's address in a request.
type IPSource func(p *radius.Packet) netip.Addr

// IPSourceNames lists the attribute names an IPSource can be made from.
func IPSourceNames() []string {
	return []string{"Calling-Station-Id", "Tunnel-Client-Endpoint", "Framed-IP-Address", "Framed-IPv6-Address"}
}

// ParseIPSources returns an IPSource that tries the named attributes in
// order and takes the first that holds an address; no names gives nil (no
// source).
func ParseIPSources(names []string) (IPSource, error) {
	var srcs []IPSource
	for i, n := range names {
		src, err := ParseIPSource(n)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		if src != nil {
			srcs = append(srcs, src)
		}
	}
	switch len(srcs) {
	case 0:
		return nil, nil
	case 1:
		return srcs[0], nil
	}
	return func(p *radius.Packet) netip.Addr {
		for _, src := range srcs {
			if a := src(p); a.IsValid() {
				return a
			}
		}
		return netip.Addr{}
	}, nil
}

// ParseIPSource returns the IPSource for an attribute name, or for a
// vendor-specific attribute written "vendor:type" ("25461:7", Palo Alto's
// client source IP); the empty name gives nil (no source).
func ParseIPSource(name string) (IPSource, error) {
	if name == "" {
		return nil, nil
	}
	if v, t, ok := strings.Cut(name, ":"); ok {
		vendor, err1 := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		typ, err2 := strconv.ParseUint(strings.TrimSpace(t), 10, 8)
		if err1 != nil || err2 != nil || vendor == 0 || typ == 0 {
			return nil, fmt.Errorf("%q is not a vendor attribute such as 25461:7 (vendor number:type)", name)
		}
		return vendorAttr(uint32(vendor), byte(typ)), nil
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
	return nil, fmt.Errorf("unknown attribute %q, want one of %s, or vendor:type", name, strings.Join(IPSourceNames(), ", "))
}

// vendorAttr reads an address from a vendor-specific attribute: as text
// ("203.0.113.9", with a port or brackets), or as 4 or 16 bytes.
func vendorAttr(vendor uint32, typ byte) IPSource {
	return func(p *radius.Packet) netip.Addr {
		v := vendorValue(p, vendor, typ)
		if v == nil {
			return netip.Addr{}
		}
		if a := ParseEndpoint(string(v)); a.IsValid() {
			return a
		}
		if len(v) == 4 || len(v) == 16 {
			a, _ := netip.AddrFromSlice(v)
			return a.Unmap()
		}
		return netip.Addr{}
	}
}

// vendorValue returns the first value of a vendor's attribute type, or nil.
func vendorValue(p *radius.Packet, vendor uint32, typ byte) []byte {
	for _, a := range p.Attributes {
		if a.Type != typeVendorSpecific {
			continue
		}
		id, vsa, err := radius.VendorSpecific(a.Attribute)
		if err != nil || id != vendor {
			continue
		}
		for len(vsa) >= 2 && int(vsa[1]) >= 2 && int(vsa[1]) <= len(vsa) {
			if vsa[0] == typ {
				return vsa[2:vsa[1]]
			}
			vsa = vsa[vsa[1]:]
		}
	}
	return nil
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
