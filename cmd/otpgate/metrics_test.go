package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"layeh.com/radius"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetrics reads the real /metrics and /healthz endpoints after
// decisions, a sent code and a dropped packet.
func TestMetrics(t *testing.T) {
	s := startServer(t, e2eConfig)
	s.cli(t, "user", "add", "meg", "--tenant", "acme", "--phone", "+31612345678")
	addr := s.addrs[0]
	expect(t, mustExchange(t, addr, request{user: "meg", password: "pw", callingStation: "192.0.2.4"}), radius.CodeAccessAccept, "HQ IP Allowed!")
	expect(t, mustExchange(t, addr, request{user: "meg", password: "pw", callingStation: "203.0.113.4"}), radius.CodeAccessChallenge, "")
	if _, _, err := exchange(t, addr, request{user: "meg", password: "pw", noMA: true}); err != errNoAnswer {
		t.Fatalf("a request without Message-Authenticator: got %v, want no answer", err)
	}
	status, body := httpGet(t, "http://"+s.metrics+"/metrics")
	if status != 200 {
		t.Fatalf("/metrics: got %d", status)
	}
	for _, want := range []string{
		`otpgate_requests_total{client="guacamole",decision="accept",reason="office_network"} 1`,
		`otpgate_requests_total{client="guacamole",decision="challenge",reason="challenge"} 1`,
		`otpgate_deliveries_total{channel="sms",provider="console",result="sent"} 1`,
		`otpgate_dropped_packets_total{cause="missing_message_authenticator"} 1`,
		`otpgate_live_challenges 1`,
		`otpgate_request_duration_seconds_count{decision="accept"} 1`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if status, body := httpGet(t, "http://"+s.metrics+"/healthz"); status != 200 || body != "ok\n" {
		t.Errorf("/healthz: got %d %q", status, body)
	}
}
