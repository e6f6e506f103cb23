//go:build !linux

package radius

import (
	"errors"
	"net"
	"net/netip"
)

// rawUDP is Linux's only (rawudp_linux.go); elsewhere sockets are read
// and written through Go's net package alone.
type rawUDP struct{}

func newRawUDP(*net.UDPConn) *rawUDP { return nil }

func (*rawUDP) close() {}

func (*rawUDP) tryRead([]byte) (int, netip.AddrPort, bool) { return 0, netip.AddrPort{}, false }

var errWouldBlock = errors.New("radius: socket buffer full")

func (*rawUDP) write([]byte, netip.AddrPort) error { return errWouldBlock }
