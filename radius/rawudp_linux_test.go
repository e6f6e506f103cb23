package radius

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// mappedSocket is an IPv6 socket bound to 127.0.0.1 as a v4-mapped
// address: IPv4 peers are then seen, and must be answered, as ::ffff:a.b.c.d,
// as on a dual-stack listener.
func mappedSocket(t *testing.T) *net.UDPConn {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no IPv6 socket: %v", err)
	}
	sa := &syscall.SockaddrInet6{Addr: netip.MustParseAddr("::ffff:127.0.0.1").As16()}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		t.Skipf("bind ::ffff:127.0.0.1: %v", err)
	}
	f := os.NewFile(uintptr(fd), "mapped")
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.(*net.UDPConn)
}

func listenUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.(*net.UDPConn)
}

// TestRawUDPReadsAndWrites: a datagram waiting is read with its sender,
// none waiting is no read and no wait, and an answer written reaches the
// sender, on IPv4, IPv6 and v4-mapped sockets.
func TestRawUDPReadsAndWrites(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server func(*testing.T) *net.UDPConn
		client string
	}{
		{"ipv4", func(t *testing.T) *net.UDPConn { return listenUDP(t, "127.0.0.1:0") }, "127.0.0.1:0"},
		{"ipv6", func(t *testing.T) *net.UDPConn { return listenUDP(t, "[::1]:0") }, "[::1]:0"},
		{"v4-mapped", mappedSocket, "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.server(t)
			r := newRawUDP(srv)
			if r == nil {
				t.Fatal("newRawUDP: nil")
			}
			defer r.close()
			buf := make([]byte, 100)
			if n, _, ok := r.tryRead(buf); ok {
				t.Fatalf("tryRead on an empty socket: got %d bytes, want none", n)
			}
			cli := listenUDP(t, tc.client)
			to := srv.LocalAddr().(*net.UDPAddr).AddrPort()
			if tc.name == "v4-mapped" {
				to = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), to.Port())
			}
			if _, err := cli.WriteToUDPAddrPort([]byte("request"), to); err != nil {
				t.Fatal(err)
			}
			var n int
			var from netip.AddrPort
			deadline := time.Now().Add(answerWait)
			for ok := false; !ok; {
				if time.Now().After(deadline) {
					t.Fatal("tryRead: no datagram")
				}
				n, from, ok = r.tryRead(buf)
			}
			if got := string(buf[:n]); got != "request" {
				t.Errorf("read %q, want %q", got, "request")
			}
			if want := cli.LocalAddr().(*net.UDPAddr).AddrPort(); from.Addr().Unmap() != want.Addr() || from.Port() != want.Port() {
				t.Errorf("from %v, want %v", from, want)
			}
			if tc.name == "v4-mapped" && !from.Addr().Is4In6() {
				t.Errorf("from %v on an IPv6 socket, want the v4-mapped form", from)
			}
			if err := r.write([]byte("answer"), from); err != nil {
				t.Fatalf("write: %v", err)
			}
			cli.SetReadDeadline(time.Now().Add(answerWait))
			n, err := cli.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], []byte("answer")) {
				t.Fatalf("answer: got %q, %v", buf[:n], err)
			}
		})
	}
}

// TestRawUDPWrongFamily: an IPv6 peer on an IPv4 socket is not written
// raw; Go's write then says why.
func TestRawUDPWrongFamily(t *testing.T) {
	r := newRawUDP(listenUDP(t, "127.0.0.1:0"))
	defer r.close()
	if err := r.write([]byte("x"), netip.MustParseAddrPort("[::1]:1812")); err != errWouldBlock {
		t.Errorf("got %v, want errWouldBlock", err)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestServeClosesItsDescriptor: Serve's own descriptor of the socket is
// closed when it returns, after the requests in flight are answered, so
// that neither a descriptor nor the port is kept.
func TestServeClosesItsDescriptor(t *testing.T) {
	c := loopbackClient(t, "127.0.0.1:0")
	before := openFDs(t)
	for range 3 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int64
		srv := &Server{Handler: countingHandler(&calls), Clients: NewClients([]*Client{c})}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx, pc) }()
		req, _ := newSignedRequest(t, "alice")
		if _, err := exchange(pc.LocalAddr().String(), req, answerWait); err != nil {
			t.Fatalf("exchange: %v", err)
		}
		cancel()
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		addr := pc.LocalAddr().String()
		pc.Close()
		// The port is free again: nothing else holds the socket.
		again, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("listen again on %s: %v", addr, err)
		}
		again.Close()
	}
	if after := openFDs(t); after > before {
		t.Errorf("open descriptors: %d before, %d after three Serves", before, after)
	}
}
