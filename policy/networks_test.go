package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestNetworksContains(t *testing.T) {
	n := newNetworks([]netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("10.1.0.0/16"), // inside the one before
		netip.MustParsePrefix("192.168.1.0/24"),
		netip.MustParsePrefix("192.168.2.0/24"), // adjacent: merged
		netip.MustParsePrefix("172.16.5.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("::/0"),           // every IPv6 address, no IPv4 one
		netip.MustParsePrefix("203.0.113.9/24"), // not masked
	})
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"10.0.0.0", true}, {"10.255.255.255", true}, {"11.0.0.0", false}, {"9.255.255.255", false},
		{"192.168.1.77", true}, {"192.168.2.255", true}, {"192.168.3.0", false}, {"192.168.0.255", false},
		{"172.16.5.7", true}, {"172.16.5.6", false}, {"172.16.5.8", false},
		{"203.0.113.1", true},
		{"::ffff:10.1.2.3", true}, // IPv4-mapped, as some gateways send it
		{"2001:db8::1", true}, {"fe80::1", true},
		{"fe80::1%eth0", false}, // a zone: in no prefix, as Prefix.Contains says
		{"0.0.0.0", false}, {"255.255.255.255", false},
	} {
		if got := n.contains(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("contains(%s): got %v, want %v", tc.ip, got, tc.want)
		}
	}
	if got := n.contains(netip.Addr{}); got {
		t.Errorf("contains(invalid): got true, want false")
	}
	if got := (networks{}).contains(netip.MustParseAddr("10.0.0.1")); got {
		t.Errorf("empty table: got true, want false")
	}
	if got, want := n.len(), 5; got != want {
		t.Errorf("ranges after merging: got %d, want %d", got, want)
	}
}

func TestNetworksAgreeWithPrefixContains(t *testing.T) {
	// Random tables against a scan with netip.Prefix.Contains, with
	// addresses drawn near the prefixes' edges, where mistakes live.
	r := rand.New(rand.NewPCG(1, 2))
	randPrefix := func() netip.Prefix {
		if r.IntN(4) == 0 {
			var a [16]byte
			a[0], a[1], a[15] = 0x20, byte(r.IntN(4)), byte(r.IntN(256))
			return netip.PrefixFrom(netip.AddrFrom16(a), 8+r.IntN(121))
		}
		a := [4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))}
		return netip.PrefixFrom(netip.AddrFrom4(a), 8+r.IntN(25))
	}
	for round := range 200 {
		prefixes := make([]netip.Prefix, 1+r.IntN(50))
		for i := range prefixes {
			prefixes[i] = randPrefix()
		}
		n := newNetworks(prefixes)
		var probes []netip.Addr
		for _, p := range prefixes {
			p = p.Masked()
			first, last := p.Addr(), lastAddr(p)
			probes = append(probes, first, first.Prev(), last, last.Next(), netip.AddrFrom16(first.As16()))
		}
		for range 100 {
			probes = append(probes, randPrefix().Addr())
		}
		for _, ip := range probes {
			if !ip.IsValid() {
				continue
			}
			want := slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(ip.Unmap()) })
			if got := n.contains(ip); got != want {
				t.Fatalf("round %d, %v in %v: got %v, want %v", round, ip, prefixes, got, want)
			}
		}
	}
}

func TestNetworksManyPrefixes(t *testing.T) {
	// A tenant with 100,000 office networks: the table holds them all and
	// finds the last and the first as it finds any.
	var prefixes []netip.Prefix
	for i := range 100000 {
		prefixes = append(prefixes, netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.%d/26", i>>9, (i>>1)&255, (i&1)*128)))
	}
	n := newNetworks(prefixes)
	if got, want := n.len(), 100000; got != want {
		t.Fatalf("ranges: got %d, want %d", got, want)
	}
	for _, tc := range []struct {
		ip   string
		want bool
	}{{"10.0.0.1", true}, {"10.0.0.64", false}, {"10.0.0.128", true}, {"10.195.79.190", true}, {"10.195.79.192", false}, {"10.195.80.0", false}} {
		if got := n.contains(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("contains(%s): got %v, want %v", tc.ip, got, tc.want)
		}
	}
}
