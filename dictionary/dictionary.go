// Package dictionary names RADIUS attributes and reads their values as an
// administrator writes them ("Filter-Id=admins", "Session-Timeout=3600",
// "Fortinet-Group-Name=vpn-admins", "12356:1=vpn-admins"), checked against
// the attribute's type, into bytes ready to send. It knows the attributes
// of RFC 2865, 2866, 2868, 2869 and 3162 and those of the vendors gateways
// read most (Microsoft, Cisco, Fortinet, Palo Alto, Juniper, Citrix,
// Aruba); any other is written vendor:type.
package dictionary

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is how an attribute's value is written and encoded.
type Kind int

// The kinds of value (RFC 8044's names in brackets).
const (
	Text       Kind = iota // UTF-8 text [text]
	Octets                 // bytes: 0x and hex digits, or text [string]
	Integer                // a 32-bit number, or one of the attribute's named values [integer]
	IPv4                   // an IPv4 address [ipv4addr]
	IPv6                   // an IPv6 address [ipv6addr]
	IPv6Prefix             // an IPv6 network such as 2001:db8::/48 [ipv6prefix]
)

func (k Kind) String() string {
	return [...]string{"text", "octets", "integer", "IPv4 address", "IPv6 address", "IPv6 prefix"}[k]
}

// MaxValue is the most bytes a standard attribute's value can hold; a
// vendor's holds 6 fewer (its vendor number and its own type and length).
const MaxValue = 253

// max is the most bytes d's value can hold.
func (d Def) max() int {
	if d.Vendor != 0 {
		return MaxValue - 6
	}
	return MaxValue
}

// Def is one attribute in the dictionary.
type Def struct {
	Name string
	// Vendor is the vendor number of a vendor-specific attribute (26); 0
	// for the standard ones.
	Vendor uint32
	Type   byte
	Kind   Kind
	// Tagged marks an attribute of RFC 2868 (Tunnel-Type, ...), which
	// carries a tag; otpgate sends tag 0.
	Tagged bool
	// Values are the names of an Integer attribute's values.
	Values map[string]uint32
}

// Key is an attribute's vendor and type: what tells two attributes apart.
type Key struct {
	Vendor uint32
	Type   byte
}

// Key returns d's key.
func (d Def) Key() Key { return Key{d.Vendor, d.Type} }

// Attribute is one attribute ready to send.
type Attribute struct {
	Key
	Value []byte
}

var (
	byName = map[string]Def{}
	byKey  = map[Key]Def{}
)

func init() {
	for _, d := range attributes {
		byName[strings.ToLower(d.Name)] = d
		if _, dup := byKey[d.Key()]; !dup {
			byKey[d.Key()] = d
		}
	}
}

// Lookup returns the attribute called name (in any case), or one written
// "vendor:type" (a vendor-specific attribute: "12356:1"); an unknown
// vendor's attribute is of kind Octets.
func Lookup(name string) (Def, error) {
	name = strings.TrimSpace(name)
	if d, ok := byName[strings.ToLower(name)]; ok {
		return d, nil
	}
	if v, t, ok := strings.Cut(name, ":"); ok {
		vendor, err1 := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		typ, err2 := strconv.ParseUint(strings.TrimSpace(t), 10, 8)
		if err1 != nil || err2 != nil || vendor == 0 || typ == 0 {
			return Def{}, fmt.Errorf("%q is not a vendor attribute such as 12356:1 (vendor number:type)", name)
		}
		k := Key{uint32(vendor), byte(typ)}
		if d, ok := byKey[k]; ok {
			return d, nil
		}
		return Def{Name: name, Vendor: k.Vendor, Type: k.Type, Kind: Octets}, nil
	}
	return Def{}, fmt.Errorf("unknown attribute %q; write a vendor's other attributes as vendor:type (12356:1)", name)
}

// Name returns the name of the attribute with key k: its dictionary name,
// "vendor:type" for another vendor's, or "type" for an unknown standard one.
func Name(k Key) string {
	if d, ok := byKey[k]; ok {
		return d.Name
	}
	if k.Vendor != 0 {
		return fmt.Sprintf("%d:%d", k.Vendor, k.Type)
	}
	return strconv.Itoa(int(k.Type))
}

// Vars fill the templates in text values.
type Vars struct {
	User, Tenant, Method string
}

// Reply is an attribute as configured ("Name=value"), checked: its value
// is encoded when the templates in it ({user}, {tenant}, {method}) are
// filled in.
type Reply struct {
	Def
	// text is the value as written; value its encoding, when it has no
	// template.
	text  string
	value []byte
}

// templates are the placeholders a text value may hold.
var templates = []string{"{user}", "{tenant}", "{method}"}

// Parse reads "Name=value" or "vendor:type=value" and checks the value
// against the attribute's kind.
func Parse(s string) (Reply, error) {
	name, text, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return Reply{}, fmt.Errorf("%q is not Name=value, such as Filter-Id=admins", s)
	}
	d, err := Lookup(name)
	if err != nil {
		return Reply{}, err
	}
	r := Reply{Def: d, text: text}
	if hasTemplate(text) {
		if d.Kind != Text && d.Kind != Octets {
			return Reply{}, fmt.Errorf("%s: {user}, {tenant} and {method} only go in text values, not in a %s", d.Name, d.Kind)
		}
		if strings.HasPrefix(text, "0x") && d.Kind == Octets {
			return Reply{}, fmt.Errorf("%s: a 0x value takes no template", d.Name)
		}
		if len(text) > d.max() {
			return Reply{}, fmt.Errorf("%s: %d bytes, want at most %d", d.Name, len(text), d.max())
		}
		return r, nil
	}
	if r.value, err = encode(d, text); err != nil {
		return Reply{}, fmt.Errorf("%s: %w", d.Name, err)
	}
	return r, nil
}

// String is the reply as written.
func (r Reply) String() string { return r.Name + "=" + r.text }

// Attribute returns the attribute to send, its templates filled in from v;
// a filled-in value too long for an attribute is cut at a character.
func (r Reply) Attribute(v Vars) Attribute {
	if r.value != nil || !hasTemplate(r.text) {
		return Attribute{Key: r.Key(), Value: r.value}
	}
	s := strings.NewReplacer("{user}", v.User, "{tenant}", v.Tenant, "{method}", v.Method).Replace(r.text)
	if len(s) > r.max() {
		s = s[:r.max()]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return Attribute{Key: r.Key(), Value: []byte(s)}
}

func hasTemplate(s string) bool {
	return slices.ContainsFunc(templates, func(t string) bool { return strings.Contains(s, t) })
}

// encode checks a value written as text against d's kind and encodes it.
func encode(d Def, s string) ([]byte, error) {
	var b []byte
	switch d.Kind {
	case Text:
		if !utf8.ValidString(s) {
			return nil, errors.New("is not UTF-8 text")
		}
		b = []byte(s)
	case Octets:
		if h, ok := strings.CutPrefix(s, "0x"); ok {
			var err error
			if b, err = hex.DecodeString(h); err != nil {
				return nil, fmt.Errorf("%q is not 0x and an even number of hex digits", s)
			}
		} else {
			b = []byte(s)
		}
	case Integer:
		n, ok := d.Values[s]
		if !ok {
			for name, v := range d.Values {
				if strings.EqualFold(name, s) {
					n, ok = v, true
				}
			}
		}
		if !ok {
			v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
			if err != nil {
				if len(d.Values) > 0 {
					return nil, fmt.Errorf("%q is not a number or one of %s", s, strings.Join(valueNames(d), ", "))
				}
				return nil, fmt.Errorf("%q is not a number from 0 to 4294967295", s)
			}
			n = uint32(v)
		}
		if d.Tagged {
			if n > 0xffffff {
				return nil, fmt.Errorf("%q is more than a tagged integer holds (16777215)", s)
			}
			n &= 0xffffff // tag 0 in the first byte
		}
		b = binary.BigEndian.AppendUint32(nil, n)
	case IPv4:
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%q is not an IPv4 address", s)
		}
		b = a.AsSlice()
	case IPv6:
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !a.Is6() || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IPv6 address", s)
		}
		b = a.AsSlice()
	case IPv6Prefix:
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil || !p.Addr().Is6() || p != p.Masked() {
			return nil, fmt.Errorf("%q is not an IPv6 network such as 2001:db8::/48", s)
		}
		// RFC 3162 §2.3: reserved, length, then the prefix's bytes.
		b = append([]byte{0, byte(p.Bits())}, p.Addr().AsSlice()[:(p.Bits()+7)/8]...)
	}
	if len(b) > d.max() {
		return nil, fmt.Errorf("%d bytes, want at most %d", len(b), d.max())
	}
	if len(b) == 0 {
		return nil, errors.New("is empty")
	}
	return b, nil
}

// valueNames lists d's named values in order of their numbers.
func valueNames(d Def) []string {
	names := make([]string, 0, len(d.Values))
	for n := range d.Values {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return int(d.Values[a]) - int(d.Values[b]) })
	return names
}

// Reserved reports whether otpgate writes the attribute with key k itself,
// so that it may not be configured or passed on: Reply-Message (the
// messages), State, Proxy-State and Message-Authenticator.
func Reserved(k Key) bool {
	return k.Vendor == 0 && (k.Type == 18 || k.Type == 24 || k.Type == 33 || k.Type == 80)
}

// Unpassable reports whether an attribute with key k in another RADIUS
// server's answer cannot be passed on to a gateway as it came: its value
// is hidden with that server's secret and the authenticator of otpgate's
// request to it, which the gateway does not have (User-Password,
// Tunnel-Password of RFC 2868 §3.5, MS-CHAP-MPPE-Keys and
// MS-MPPE-Send-Key and -Recv-Key of RFC 2548), so the gateway would read a
// wrong value without noticing; or it belongs to an EAP conversation
// (EAP-Message, RFC 3579), which otpgate does not hold with the gateway.
func Unpassable(k Key) bool {
	switch k.Vendor {
	case 0:
		return k.Type == 2 || k.Type == 69 || k.Type == 79
	case 311: // Microsoft
		return k.Type == 12 || k.Type == 16 || k.Type == 17
	}
	return false
}

// ParseReply is Parse for a reply attribute an administrator configures:
// it refuses the attributes otpgate sets itself (Reserved).
func ParseReply(s string) (Reply, error) {
	r, err := Parse(s)
	if err == nil && Reserved(r.Key()) {
		return Reply{}, fmt.Errorf("otpgate sets %s itself", r.Name)
	}
	return r, err
}

// ParseList reads a list of reply attributes with ParseReply; the error
// names the list's entries at fault ("[2]: ...").
func ParseList(list []string) ([]Reply, error) {
	var out []Reply
	var errs []error
	for i, s := range list {
		r, err := ParseReply(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("[%d]: %w", i, err))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}
