package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
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

func TestStoreSyncTimes(t *testing.T) {
	h := store.SyncHistogram{Count: 3, Sum: 600 * time.Microsecond,
		Bounds: []time.Duration{100 * time.Microsecond, 250 * time.Microsecond}, Buckets: []uint64{1, 2}}
	m := New(Sources{SyncTimes: func() map[string]store.SyncHistogram { return map[string]store.SyncHistogram{store.SyncStepLog: h} }})
	rec := httptest.NewRecorder()
	m.Handler(func() error { return nil }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`otpgate_store_sync_duration_seconds_bucket{kind="step_log",le="0.0001"} 1`,
		`otpgate_store_sync_duration_seconds_bucket{kind="step_log",le="0.00025"} 2`,
		`otpgate_store_sync_duration_seconds_bucket{kind="step_log",le="+Inf"} 3`,
		`otpgate_store_sync_duration_seconds_sum{kind="step_log"} 0.0006`,
		`otpgate_store_sync_duration_seconds_count{kind="step_log"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
