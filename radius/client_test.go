package radius

import (
	"net/netip"
	"slices"
	"testing"
)

func TestClientsLookup(t *testing.T) {
	office := &Client{Name: "office", Prefix: netip.MustParsePrefix("203.0.113.0/24")}
	gateway := &Client{Name: "gateway", Prefix: netip.MustParsePrefix("203.0.113.9/32")}
	wide := &Client{Name: "wide", Prefix: netip.MustParsePrefix("203.0.0.0/16")}
	v6net := &Client{Name: "v6net", Prefix: netip.MustParsePrefix("2001:db8::/32")}
	v6host := &Client{Name: "v6host", Prefix: netip.MustParsePrefix("2001:db8::5/128")}
	all := []*Client{wide, office, gateway, v6net, v6host}

	tests := []struct {
		addr string
		want *Client
	}{
		{"203.0.113.9", gateway},
		{"203.0.113.10", office},
		{"203.0.7.1", wide},
		{"::ffff:203.0.113.9", gateway},
		{"::ffff:203.0.113.10", office},
		{"2001:db8::5", v6host},
		{"2001:db8::6", v6net},
		{"2001:db8:ffff::1", v6net},
		{"198.51.100.1", nil},
		{"2001:db9::1", nil},
		{"::ffff:198.51.100.1", nil},
		{"::1", nil},
	}
	// The order clients are configured in must not matter.
	orders := map[string][]*Client{
		"wide first":   all,
		"narrow first": {v6host, v6net, gateway, office, wide},
	}
	for orderName, list := range orders {
		given := slices.Clone(list)
		cs := NewClients(list)
		if !slices.Equal(list, given) {
			t.Errorf("%s: NewClients reordered its argument: got %v, want %v", orderName, list, given)
		}
		for _, tc := range tests {
			t.Run(orderName+"/"+tc.addr, func(t *testing.T) {
				got := cs.Lookup(netip.MustParseAddr(tc.addr))
				if got != tc.want {
					t.Errorf("got %s, want %s", clientName(got), clientName(tc.want))
				}
			})
		}
	}
}

func TestClientsLookupEmpty(t *testing.T) {
	if got := NewClients(nil).Lookup(netip.MustParseAddr("127.0.0.1")); got != nil {
		t.Errorf("got %s, want none", clientName(got))
	}
}

func clientName(c *Client) string {
	if c == nil {
		return "<nil>"
	}
	return c.Name
}

func TestClientUserName(t *testing.T) {
	tests := []struct {
		name          string
		domain, realm bool
		in, want      string
	}{
		{"no rules", false, false, `CORP\alice@example.com`, `CORP\alice@example.com`},
		{"domain stripped", true, false, `CORP\alice`, "alice"},
		{"domain rule leaves realm", true, false, "alice@example.com", "alice@example.com"},
		{"domain rule, plain name", true, false, "alice", "alice"},
		{"domain rule, nested", true, false, `FOREST\CORP\alice`, "alice"},
		{"realm stripped", false, true, "alice@example.com", "alice"},
		{"realm rule leaves domain", false, true, `CORP\alice`, `CORP\alice`},
		{"realm rule, plain name", false, true, "alice", "alice"},
		{"both", true, true, `CORP\alice@example.com`, "alice"},
		{"both, empty", true, true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{StripDomain: tc.domain, StripRealm: tc.realm}
			if got := c.UserName(tc.in); got != tc.want {
				t.Errorf("UserName(%q): got %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestMatchTLSName(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"fw1.example.com", "fw1.example.com", true},
		{"fw1.example.com", "FW1.Example.COM", true},
		{"fw1.example.com", "fw2.example.com", false},
		{"fw1.example.com", "fw1.example.com.evil.net", false},
		{"*.gw.example.com", "fw1.gw.example.com", true},
		{"*.gw.example.com", "gw.example.com", false},
		{"*.gw.example.com", "a.b.gw.example.com", false},
		{"*.gw.example.com", ".gw.example.com", false},
		{"*.gw.example.com", "fw1.gw.example.org", false},
		{"FGT60FTK21000001", "FGT60FTK21000001", true}, // a FortiGate's serial number as CN
	} {
		if got := MatchTLSName(tc.pattern, tc.name); got != tc.want {
			t.Errorf("MatchTLSName(%q, %q): got %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"", " fw1", "fw*.example.com", "*", "example.*", "a..*.b"} {
		if CheckTLSName(bad) == nil {
			t.Errorf("CheckTLSName(%q): got nil, want an error", bad)
		}
	}
	for _, good := range []string{"fw1.example.com", "*.gw.example.com", "FGT60FTK21000001"} {
		if err := CheckTLSName(good); err != nil {
			t.Errorf("CheckTLSName(%q): %v", good, err)
		}
	}
}

// TestClientsLookupTLS: a RadSec client needs its name and its address;
// UDP lookups never see it; the most specific address wins, then an exact
// name over a pattern.
func TestClientsLookupTLS(t *testing.T) {
	anyV4 := netip.MustParsePrefix("0.0.0.0/0")
	wild := &Client{Name: "wild", Prefix: anyV4, TLSName: "*.gw.example.com"}
	exact := &Client{Name: "exact", Prefix: anyV4, TLSName: "fw1.gw.example.com"}
	office := &Client{Name: "office", Prefix: netip.MustParsePrefix("203.0.113.0/24"), TLSName: "*.gw.example.com"}
	udp := &Client{Name: "udp", Prefix: anyV4}
	cs := NewClients([]*Client{wild, office, exact, udp})
	for _, tc := range []struct {
		addr  string
		names []string
		want  *Client
	}{
		{"198.51.100.1", []string{"fw2.gw.example.com"}, wild},
		{"198.51.100.1", []string{"fw1.gw.example.com"}, exact},
		{"203.0.113.7", []string{"fw1.gw.example.com"}, office},
		{"::ffff:203.0.113.7", []string{"other", "fw9.gw.example.com"}, office},
		{"198.51.100.1", []string{"gw.example.com"}, nil},
		{"2001:db8::1", []string{"fw1.gw.example.com"}, nil},
		{"198.51.100.1", nil, nil},
	} {
		if got := cs.LookupTLS(netip.MustParseAddr(tc.addr), tc.names); got != tc.want {
			t.Errorf("LookupTLS(%s, %v): got %s, want %s", tc.addr, tc.names, clientName(got), clientName(tc.want))
		}
	}
	if got := cs.Lookup(netip.MustParseAddr("203.0.113.7")); got != udp {
		t.Errorf("Lookup: got %s, want udp (RadSec clients are not for UDP)", clientName(got))
	}
}
