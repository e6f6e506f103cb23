package radius

import (
	"encoding/binary"
	"errors"

	"layeh.com/radius"
)

// parsePacket is radius.Parse with a handful of allocations instead of two
// per attribute: the attributes' values are slices of one copy of the
// packet's attribute bytes (each capped at its own end, so that an append
// to one cannot run into the next), and their AVPs one array. It accepts
// and refuses exactly what radius.Parse does, and the packet it returns
// keeps nothing of b.
func parsePacket(b, secret []byte) (*radius.Packet, error) {
	if len(b) < 20 {
		return nil, errors.New("radius: packet not at least 20 bytes long")
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > radius.MaxPacketLength || len(b) < length {
		return nil, errors.New("radius: invalid packet length")
	}
	body := b[20:length]
	n := 0
	for rest := body; len(rest) > 0; n++ {
		if len(rest) < 2 {
			return nil, errors.New("short buffer")
		}
		l := int(rest[1])
		if l > len(rest) || l < 2 {
			return nil, errors.New("invalid attribute length")
		}
		rest = rest[l:]
	}
	p := &radius.Packet{
		Code:       radius.Code(b[0]),
		Identifier: b[1],
		Secret:     secret,
	}
	copy(p.Authenticator[:], b[4:20])
	if n == 0 {
		return p, nil
	}
	values := append([]byte(nil), body...)
	avps := make([]radius.AVP, n)
	p.Attributes = make(radius.Attributes, n)
	for i, at := 0, 0; i < n; i++ {
		l := int(values[at+1])
		avps[i].Type = radius.Type(values[at])
		if l > 2 {
			avps[i].Attribute = radius.Attribute(values[at+2 : at+l : at+l])
		}
		p.Attributes[i] = &avps[i]
		at += l
	}
	return p, nil
}
