package radius

import (
	"slices"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/dictionary"
)

// avpOf encodes an attribute, a vendor's inside a Vendor-Specific (RFC
// 2865 §5.26: vendor number, then the vendor's type, length and value).
func avpOf(a dictionary.Attribute) *radius.AVP {
	if a.Vendor == 0 {
		return &radius.AVP{Type: radius.Type(a.Type), Attribute: radius.Attribute(a.Value)}
	}
	v := make([]byte, 0, 6+len(a.Value))
	v = append(v, byte(a.Vendor>>24), byte(a.Vendor>>16), byte(a.Vendor>>8), byte(a.Vendor), a.Type, byte(2+len(a.Value)))
	return &radius.AVP{Type: typeVendorSpecific, Attribute: append(v, a.Value...)}
}

// attributes are p's attributes, a Vendor-Specific's taken apart into the
// vendor's own; one whose inside is not in the usual form is left out.
func attributes(p *radius.Packet) []dictionary.Attribute {
	var out []dictionary.Attribute
	for _, a := range p.Attributes {
		if a.Type != typeVendorSpecific {
			out = append(out, dictionary.Attribute{Key: dictionary.Key{Type: byte(a.Type)}, Value: slices.Clone(a.Attribute)})
			continue
		}
		vendor, vsa, err := radius.VendorSpecific(a.Attribute)
		if err != nil || vendor == 0 {
			continue
		}
		var inner []dictionary.Attribute
		for len(vsa) >= 2 && int(vsa[1]) >= 2 && int(vsa[1]) <= len(vsa) {
			inner = append(inner, dictionary.Attribute{Key: dictionary.Key{Vendor: vendor, Type: vsa[0]}, Value: slices.Clone(vsa[2:vsa[1]])})
			vsa = vsa[vsa[1]:]
		}
		if len(vsa) == 0 {
			out = append(out, inner...)
		}
	}
	return out
}

// nasTypes are the attributes of a gateway's request that describe the
// login, which an upstream server's policies may match on.
var nasTypes = []radius.Type{
	4,  // NAS-IP-Address
	32, // NAS-Identifier
	95, // NAS-IPv6-Address
	61, // NAS-Port-Type
	30, // Called-Station-Id
	31, // Calling-Station-Id
	8,  // Framed-IP-Address
}

// nasAttributes are p's attributes of nasTypes, in p's order.
func nasAttributes(p *radius.Packet) []dictionary.Attribute {
	var out []dictionary.Attribute
	for _, a := range p.Attributes {
		if slices.Contains(nasTypes, a.Type) {
			out = append(out, dictionary.Attribute{Key: dictionary.Key{Type: byte(a.Type)}, Value: slices.Clone(a.Attribute)})
		}
	}
	return out
}
