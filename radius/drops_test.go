package radius

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// dropLine is one "packet dropped" log line.
type dropLine struct {
	cause string
	count uint64
}

// logRecorder is a slog.Handler that keeps the "packet dropped" lines and
// passes each cause on to causes (when not full), so tests can wait for a
// drop instead of for time.
type logRecorder struct {
	causes chan string

	mu    sync.Mutex
	lines []dropLine
}

func newLogRecorder() *logRecorder { return &logRecorder{causes: make(chan string, 64)} }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "packet dropped" {
		return nil
	}
	var line dropLine
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "cause":
			line.cause = a.Value.String()
		case "count":
			line.count = a.Value.Uint64()
		}
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	select {
	case l.causes <- line.cause:
	default:
	}
	return nil
}

func (l *logRecorder) drops() []dropLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func TestDropCounter(t *testing.T) {
	clock := &fakeClock{now: t0}
	rec := newLogRecorder()
	d := newDropCounter(slog.New(rec), clock.Now)
	src := netip.MustParseAddrPort("192.0.2.1:1812")

	d.add("malformed", src) // logged: first of its cause
	d.add("malformed", src)
	d.add("malformed", src)
	d.add("panic", src) // logged: causes are limited separately
	clock.Advance(d.interval - time.Nanosecond)
	d.add("malformed", src)
	clock.Advance(time.Nanosecond)
	d.add("malformed", src) // logged with the 4 since the last line

	want := []dropLine{{"malformed", 1}, {"panic", 1}, {"malformed", 4}}
	if got := rec.drops(); !slices.Equal(got, want) {
		t.Errorf("log lines: got %v, want %v", got, want)
	}
	wantTotal := map[string]uint64{"malformed": 5, "panic": 1}
	snap := d.snapshot()
	if !maps.Equal(snap, wantTotal) {
		t.Errorf("totals: got %v, want %v", snap, wantTotal)
	}
	snap["malformed"] = 100
	if got := d.snapshot()["malformed"]; got != 5 {
		t.Errorf("snapshot is not a copy: got %d after changing it, want 5", got)
	}
}

// levelRecorder keeps every record's level and attributes as text.
type levelRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *levelRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *levelRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *levelRecorder) WithGroup(string) slog.Handler            { return l }
func (l *levelRecorder) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	return nil
}

// TestDropLines: a retransmission during a held login is expected traffic
// (debug, still counted); a bad Message-Authenticator says what it
// usually means and which client sent it.
func TestDropLines(t *testing.T) {
	rec := &levelRecorder{}
	d := newDropCounter(slog.New(rec), (&fakeClock{now: t0}).Now)
	src := netip.MustParseAddrPort("192.0.2.1:1812")
	d.add("duplicate_in_progress", src)
	d.add("bad_message_authenticator", src, "client", "nps")
	want := []string{
		"DEBUG packet dropped cause=duplicate_in_progress src=192.0.2.1:1812 count=1 why=a retransmission of a request still being decided",
		"WARN packet dropped cause=bad_message_authenticator src=192.0.2.1:1812 count=1 why=wrong shared secret or a changed packet client=nps",
	}
	if !slices.Equal(rec.lines, want) {
		t.Errorf("got\n%q\nwant\n%q", rec.lines, want)
	}
	if got := d.snapshot()["duplicate_in_progress"]; got != 1 {
		t.Errorf("duplicate_in_progress counted %d, want 1", got)
	}
}
