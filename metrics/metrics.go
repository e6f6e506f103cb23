// Package metrics exposes what otpgate does as Prometheus metrics, and a
// health check that fails when the store cannot be written.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// Metrics is the registry and the metrics otpgate updates. It is a
// policy.Observer.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	deliveries *prometheus.CounterVec
}

// Sources are read when Prometheus scrapes.
type Sources struct {
	// Dropped returns packets dropped by cause, per listener.
	Dropped []func() map[string]uint64
	// LiveChallenges counts the challenges waiting for an answer.
	LiveChallenges func() int
	// Held counts the logins held for approval.
	Held func() int
	// RadSec counts the RadSec (RADIUS over TLS) connections open.
	RadSec func() int
	// AuditDropped counts the audit entries that could not be written.
	AuditDropped func() uint64
	// StoreUnavailable says why the shared store (etcd) takes no writes
	// now, or nil; nil means a store that is always available.
	StoreUnavailable func() error
	// SyncTimes returns how long the store's writes took, by kind
	// (store.DB.SyncTimes).
	SyncTimes func() map[string]store.SyncHistogram
}

// New makes the metrics, with the Go runtime's and the process's.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpgate_requests_total", Help: "Decisions by client, decision and reason.",
		}, []string{"client", "decision", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "otpgate_request_duration_seconds", Help: "Time to decide, by decision (a sent code's delivery included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"decision"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpgate_deliveries_total", Help: "Messages by channel, provider and result (sent, failed, or the limit that stopped them).",
		}, []string{"channel", "provider", "result"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.deliveries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.LiveChallenges != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "otpgate_live_challenges", Help: "Challenges kept, not yet answered or pruned (in a cluster, those that sent a code: an app's challenge travels sealed in its State).",
		}, func() float64 { return float64(src.LiveChallenges()) }))
	}
	if src.Held != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "otpgate_held_logins", Help: "Logins held for approval, each waiting for its user's answer without a request worker.",
		}, func() float64 { return float64(src.Held()) }))
	}
	if src.RadSec != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "otpgate_radsec_connections", Help: "RadSec (RADIUS over TLS) connections open, handshakes under way included.",
		}, func() float64 { return float64(src.RadSec()) }))
	}
	if src.AuditDropped != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "otpgate_audit_dropped_total", Help: "Audit entries that could not be written (the store could not be written).",
		}, func() float64 { return float64(src.AuditDropped()) }))
	}
	if src.StoreUnavailable != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "otpgate_store_available", Help: "1 while the shared store (etcd) takes writes; 0 while the last check or write found it unreachable or without quorum (codes wait for it, then are refused).",
		}, func() float64 {
			if src.StoreUnavailable() != nil {
				return 0
			}
			return 1
		}))
	}
	if src.SyncTimes != nil {
		m.reg.MustRegister(&syncTimes{src: src.SyncTimes, desc: prometheus.NewDesc("otpgate_store_sync_duration_seconds",
			"Time for the store's writes, by kind: step_log, a frame of used TOTP steps written to the log beside the store's file (one write that does not wait for the disk, what a TOTP answer waits for; none in a cluster, whose steps go to etcd); file, the write of a commit of the store's file (its pages and its meta page, each synced to the disk).",
			[]string{"kind"}, nil)})
	}
	if len(src.Dropped) > 0 {
		m.reg.MustRegister(&dropped{src: src.Dropped, desc: prometheus.NewDesc("otpgate_dropped_packets_total",
			"Packets dropped without an answer, by cause.", []string{"cause"}, nil)})
	}
	return m
}

// Decided counts a decision.
func (m *Metrics) Decided(client string, res policy.Result, took time.Duration) {
	d := res.Decision.String()
	m.requests.WithLabelValues(client, d, res.Reason).Inc()
	m.latency.WithLabelValues(d).Observe(took.Seconds())
}

// Delivered counts a message.
func (m *Metrics) Delivered(channel, provider, result string) {
	m.deliveries.WithLabelValues(channel, provider, result).Inc()
}

// Handler serves /metrics and /healthz; healthy reports whether the store
// can be written (and audit entries are not being dropped).
func (m *Metrics) Handler(healthy func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := healthy(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// dropped collects the drop counters of the RADIUS listeners.
type dropped struct {
	src  []func() map[string]uint64
	desc *prometheus.Desc
}

func (d *dropped) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *dropped) Collect(ch chan<- prometheus.Metric) {
	sum := map[string]uint64{}
	for _, f := range d.src {
		for cause, n := range f() {
			sum[cause] += n
		}
	}
	for cause, n := range sum {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(n), cause)
	}
}

// syncTimes collects the store's histograms of writes.
type syncTimes struct {
	src  func() map[string]store.SyncHistogram
	desc *prometheus.Desc
}

func (s *syncTimes) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

func (s *syncTimes) Collect(ch chan<- prometheus.Metric) {
	for kind, h := range s.src() {
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, le := range h.Bounds {
			buckets[le.Seconds()] = h.Buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(s.desc, h.Count, h.Sum.Seconds(), buckets, kind)
	}
}
