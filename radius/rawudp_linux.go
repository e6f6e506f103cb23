package radius

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// rawUDP reads and writes a UDP socket through a descriptor of its own,
// past the locks Go's net package holds around each read and each write of
// a socket. Those locks serialise the socket's callers: while one worker
// sends an answer, every other that has one waits for it, and while one
// waits in the read, the next worker to read queues behind it and must be
// scheduled to take its turn. On a loaded machine the thread of the worker
// holding a lock is sometimes descheduled by the kernel for milliseconds,
// and every worker queued behind it waits that long (Go's execution trace
// of a bench cell at c=16: 20 % of answers waited for the write lock, 0.3
// ms at the median; the next reader waited 1.2 ms at p90 and 8 ms at p99
// to run). The kernel needs none of that: it takes datagrams off a
// socket's queue and puts them on the wire for concurrent callers itself.
//
// So a worker reads a datagram that is already waiting with a recvfrom of
// its own that does not wait (tryRead), and waits in Go's read, with its
// lock, only when none is; and every answer goes out with a sendto of its
// own (write), through Go's write only when the socket's buffer is full.
type rawUDP struct {
	fd    int  // a duplicate of the socket's descriptor, closed by close
	inet6 bool // the socket is AF_INET6 (IPv4 peers are then v4-mapped)
}

// newRawUDP duplicates c's descriptor. It returns nil when it cannot:
// the socket is then read and written through c alone.
func newRawUDP(c *net.UDPConn) *rawUDP {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	fd := -1
	if rc.Control(func(s uintptr) {
		// Close-on-exec, as Go's own descriptors; non-blocking, as the
		// socket's description already is.
		if r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0); errno == 0 {
			fd = int(r)
		}
	}) != nil || fd < 0 {
		return nil
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil
	}
	_, inet6 := sa.(*syscall.SockaddrInet6)
	return &rawUDP{fd: fd, inet6: inet6}
}

// close releases the duplicate descriptor. Nothing may use r afterwards.
func (r *rawUDP) close() { syscall.Close(r.fd) }

// tryRead takes a datagram that is waiting into buf, without waiting for
// one: ok is false when none is, or the read failed (Go's read then
// reports it).
func (r *rawUDP) tryRead(buf []byte) (n int, from netip.AddrPort, ok bool) {
	for {
		var sa syscall.Sockaddr
		var err error
		n, sa, err = syscall.Recvfrom(r.fd, buf, syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, netip.AddrPort{}, false
		}
		switch sa := sa.(type) {
		case *syscall.SockaddrInet4:
			return n, netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
		case *syscall.SockaddrInet6:
			a := netip.AddrFrom16(sa.Addr)
			if sa.ZoneId != 0 {
				a = a.WithZone(strconv.FormatUint(uint64(sa.ZoneId), 10))
			}
			return n, netip.AddrPortFrom(a, uint16(sa.Port)), true
		default: // not a UDP peer: nothing to answer
			return n, netip.AddrPort{}, true
		}
	}
}

// errWouldBlock says that write could not send at once; the caller then
// sends through Go's write, which waits.
var errWouldBlock = errors.New("radius: socket buffer full")

// write sends b to the peer to.
func (r *rawUDP) write(b []byte, to netip.AddrPort) error {
	var sa syscall.Sockaddr
	switch a := to.Addr(); {
	case a.Zone() != "":
		return errWouldBlock // Go's write resolves the zone's name
	case r.inet6:
		sa = &syscall.SockaddrInet6{Port: int(to.Port()), Addr: a.As16()}
	case a.Unmap().Is4():
		sa = &syscall.SockaddrInet4{Port: int(to.Port()), Addr: a.Unmap().As4()}
	default:
		return errWouldBlock // an IPv6 peer on an IPv4 socket: Go's write says why not
	}
	for {
		err := syscall.Sendto(r.fd, b, syscall.MSG_DONTWAIT, sa)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return errWouldBlock
		}
		return err
	}
}
