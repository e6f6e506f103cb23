package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
)

func TestHealthzFailsWhenTheStoreCannotBeWritten(t *testing.T) {
	m := New(Sources{})
	h := m.Handler(func() error { return errors.New("store is closed") })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "store is closed") {
		t.Errorf("got %d %q, want 503 saying why", rec.Code, rec.Body.String())
	}
}

func TestCounts(t *testing.T) {
	drops := map[string]uint64{"malformed": 2}
	m := New(Sources{Dropped: []func() map[string]uint64{func() map[string]uint64 { return drops }, func() map[string]uint64 { return drops }}})
	m.Decided("vpn", policy.Result{Decision: policy.Reject, Reason: "limit_user_hour"}, time.Millisecond)
	m.Delivered("sms", "", "limit_user_hour")
	rec := httptest.NewRecorder()
	m.Handler(func() error { return nil }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`otpgate_requests_total{client="vpn",decision="reject",reason="limit_user_hour"} 1`,
		`otpgate_deliveries_total{channel="sms",provider="",result="limit_user_hour"} 1`,
		`otpgate_dropped_packets_total{cause="malformed"} 4`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
