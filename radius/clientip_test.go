package radius

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"layeh.com/radius"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for the zero Addr
	}{
		{"203.0.113.9", "203.0.113.9"},
		{"203.0.113.9:51234", "203.0.113.9"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{" 203.0.113.9 ", "203.0.113.9"},
		{"203.0.113.9\x00", "203.0.113.9"},
		{"::ffff:203.0.113.9", "203.0.113.9"},
		{"[::ffff:203.0.113.9]:443", "203.0.113.9"},
		{"fe80::1%eth0", "fe80::1"},
		{"[fe80::1%eth0]:443", "fe80::1"},
		{"[fe80::1%eth0]", "fe80::1"},
		{"00-11-22-33-44-55", ""},
		{"00:11:22:33:44:55", ""},
		{"", ""},
		{"   ", ""},
		{"[203.0.113.9]", ""},
		{"203.0.113.9:", ""},
		{"host.example.com", ""},
		{"203.0.113.256", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			got := ParseEndpoint(tc.in)
			if got != want { // == also compares zones and 4-in-6 form
				t.Errorf("ParseEndpoint(%q): got %v, want %v", tc.in, got, want)
			}
		})
	}
}

func TestParseIPSource(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::7").As16()
	mapped := netip.MustParseAddr("::ffff:203.0.113.9").As16()
	tests := []struct {
		name  string
		attrs radius.Attributes
		want  string // "" for the zero Addr
	}{
		{"Calling-Station-Id", radius.Attributes{avp(typeCallingStationID, "203.0.113.9")}, "203.0.113.9"},
		{"calling-station-id", radius.Attributes{avp(typeCallingStationID, "[2001:db8::1]:443")}, "2001:db8::1"},
		{"CALLING-STATION-ID", radius.Attributes{avp(typeCallingStationID, "203.0.113.9:51234")}, "203.0.113.9"},
		{"Calling-Station-Id", radius.Attributes{avp(typeCallingStationID, "00-11-22-33-44-55")}, ""},
		{"Calling-Station-Id", radius.Attributes{avp(typeFramedIPAddress, "\xcb\x00\x71\x09")}, ""},
		{"Calling-Station-Id", nil, ""},
		{"Tunnel-Client-Endpoint", radius.Attributes{avp(typeTunnelClientEndpoint, "203.0.113.9")}, "203.0.113.9"},
		{"Tunnel-Client-Endpoint", radius.Attributes{avp(typeTunnelClientEndpoint, "\x01203.0.113.9")}, "203.0.113.9"},
		{"Tunnel-Client-Endpoint", radius.Attributes{avp(typeTunnelClientEndpoint, "\x1f2001:db8::1")}, "2001:db8::1"},
		{"tunnel-client-endpoint", radius.Attributes{avp(typeTunnelClientEndpoint, "\x00203.0.113.9")}, "203.0.113.9"},
		{"Tunnel-Client-Endpoint", radius.Attributes{avp(typeTunnelClientEndpoint, "")}, ""},
		{"Tunnel-Client-Endpoint", radius.Attributes{avp(typeCallingStationID, "203.0.113.9")}, ""},
		{"Framed-IP-Address", radius.Attributes{avp(typeFramedIPAddress, "\xcb\x00\x71\x09")}, "203.0.113.9"},
		{"framed-ip-address", radius.Attributes{avp(typeFramedIPAddress, "\xcb\x00\x71")}, ""},
		{"Framed-IP-Address", radius.Attributes{avp(typeFramedIPAddress, "203.0.113.9")}, ""},
		{"Framed-IP-Address", nil, ""},
		{"Framed-IPv6-Address", radius.Attributes{{Type: typeFramedIPv6Address, Attribute: v6[:]}}, "2001:db8::7"},
		{"Framed-IPv6-Address", radius.Attributes{{Type: typeFramedIPv6Address, Attribute: mapped[:]}}, "203.0.113.9"},
		{"FRAMED-IPV6-ADDRESS", radius.Attributes{{Type: typeFramedIPv6Address, Attribute: v6[:15]}}, ""},
		{"Framed-IPv6-Address", radius.Attributes{avp(typeFramedIPAddress, "\xcb\x00\x71\x09")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := ParseIPSource(tc.name)
			if err != nil {
				t.Fatalf("ParseIPSource(%q): got error %v, want none", tc.name, err)
			}
			if src == nil {
				t.Fatalf("ParseIPSource(%q): got nil source, want one", tc.name)
			}
			// First the attribute in question, then a decoy after it.
			attrs := slices.Concat(tc.attrs, radius.Attributes{avp(typeUserName, "alice")})
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got := src(&radius.Packet{Attributes: attrs}); got != want {
				t.Errorf("%s of %s: got %v, want %v", tc.name, attrString(tc.attrs), got, want)
			}
		})
	}
}

func TestParseIPSourceEmpty(t *testing.T) {
	src, err := ParseIPSource("")
	if err != nil || src != nil {
		t.Errorf("ParseIPSource(\"\"): got (%p, %v), want (nil, nil)", src, err)
	}
}

func TestParseIPSourceUnknown(t *testing.T) {
	for _, name := range []string{"NAS-IP-Address", "Calling-Station", "calling_station_id", " Calling-Station-Id"} {
		t.Run(name, func(t *testing.T) {
			src, err := ParseIPSource(name)
			if err == nil {
				t.Fatalf("got no error, want one")
			}
			if src != nil {
				t.Errorf("got a source with the error, want nil")
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %q", err, name)
			}
		})
	}
}

func TestIPSourceNamesParse(t *testing.T) {
	for _, name := range IPSourceNames() {
		if src, err := ParseIPSource(name); err != nil || src == nil {
			t.Errorf("ParseIPSource(%q): got (%p, %v), want a source", name, src, err)
		}
	}
}

// attrString shows attributes as type=value pairs for messages.
func attrString(attrs radius.Attributes) string {
	var parts []string
	for _, a := range attrs {
		parts = append(parts, fmt.Sprintf("%d=%q", a.Type, a.Attribute))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
