package policy

import (
	"net/netip"
	"slices"
)

// networks is a set of address prefixes, as a sorted table of the address
// ranges they cover, overlapping and adjacent ranges merged: whether an
// address is in one of them is a binary search, O(log n) in the number of
// prefixes, however many a tenant lists. The zero value holds nothing.
type networks struct {
	ranges []addrRange // sorted by from, disjoint, never adjacent
}

// addrRange is the addresses from..to, both included, of one family.
type addrRange struct{ from, to netip.Addr }

// newNetworks builds the table of prefixes. Invalid prefixes are left out.
func newNetworks(prefixes []netip.Prefix) networks {
	var rs []addrRange
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		rs = append(rs, addrRange{from: p.Addr(), to: lastAddr(p)})
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return a.from.Compare(b.from) })
	var merged []addrRange
	for _, r := range rs {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			// Same family, and r starts inside last or right after it.
			if last.to.Is4() == r.from.Is4() && (r.from.Compare(last.to) <= 0 || last.to.Next() == r.from) {
				if r.to.Compare(last.to) > 0 {
					last.to = r.to
				}
				continue
			}
		}
		merged = append(merged, r)
	}
	return networks{ranges: merged}
}

// lastAddr is the last address of the masked prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	bits := p.Bits()
	if p.Addr().Is4() {
		a := p.Addr().As4()
		for i := range a {
			a[i] |= hostMask(bits - 8*i)
		}
		return netip.AddrFrom4(a)
	}
	a := p.Addr().As16()
	for i := range a {
		a[i] |= hostMask(bits - 8*i)
	}
	return netip.AddrFrom16(a)
}

// hostMask is the host bits of a byte of which the first n are network bits.
func hostMask(n int) byte {
	switch {
	case n <= 0:
		return 0xff
	case n >= 8:
		return 0
	}
	return 0xff >> n
}

// contains reports whether ip is in one of the prefixes, as
// netip.Prefix.Contains would say of the prefix: an IPv4 address is not
// in an IPv6 prefix (an IPv4-mapped one is unmapped first, as a gateway
// may send it so), and an address with a zone is in none.
func (n networks) contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.Zone() != "" {
		return false
	}
	// The first range that starts after ip; ip can only be in the one before.
	i, _ := slices.BinarySearchFunc(n.ranges, ip, func(r addrRange, ip netip.Addr) int {
		if r.from.Compare(ip) <= 0 {
			return -1
		}
		return 1
	})
	if i == 0 {
		return false
	}
	r := n.ranges[i-1]
	return r.from.Is4() == ip.Is4() && ip.Compare(r.to) <= 0
}

// len is how many ranges the table holds.
func (n networks) len() int { return len(n.ranges) }
