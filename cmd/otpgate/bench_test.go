package main

import (
	"net"
	"sync/atomic"
	"testing"

	"layeh.com/radius"
)

// benchServer starts a server for a benchmark, with one TOTP user.
func benchServer(b *testing.B) *server {
	b.Helper()
	s := startServer(b, e2eConfig)
	s.cli(b, "user", "add", "bench", "--tenant", "acme")
	s.cli(b, "user", "totp", "bench", "--secret", testSecret)
	return s
}

// benchExchange sends Access-Requests from parallel sockets and checks
// every answer has the wanted code.
func benchExchange(b *testing.B, s *server, ip string, want radius.Code) {
	raddr, _ := net.ResolveUDPAddr("udp", s.addrs[0])
	var bad atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		for pb.Next() {
			raw := encodeRequest(b, request{user: "bench", password: "pw", callingStation: ip})
			conn.Write(raw)
			n, err := conn.Read(buf)
			if err != nil || n < 20 || radius.Code(buf[0]) != want {
				bad.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := bad.Load(); n > 0 {
		b.Fatalf("%d requests did not get %s", n, want)
	}
}

// BenchmarkOfficeAccept is the whitelisted path: read-only store access
// and a queued audit entry.
func BenchmarkOfficeAccept(b *testing.B) {
	s := benchServer(b)
	benchExchange(b, s, "192.0.2.10", radius.CodeAccessAccept)
}

// BenchmarkTOTPChallenge is the first round of a TOTP login: a challenge
// written to the store (group-committed) and an audit entry.
func BenchmarkTOTPChallenge(b *testing.B) {
	s := benchServer(b)
	benchExchange(b, s, "203.0.113.10", radius.CodeAccessChallenge)
}
