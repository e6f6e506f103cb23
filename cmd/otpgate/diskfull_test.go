package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"layeh.com/radius"
)

// metricValue reads one unlabelled metric from a /metrics page.
func metricValue(t *testing.T, page, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("/metrics lacks %s", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}

// fillDisk writes a file in dir until the file system is full, and
// returns a function that removes it.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditDroppedWhenDiskFull puts the store on a file system of 1 MB,
// fills it, and logs in many times: the audit entries that cannot be
// written are counted in otpgate_audit_dropped_total, reported at error
// level once per 10 s with how many, and /healthz fails until an entry is
// written again.
func TestAuditDroppedWhenDiskFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("a full disk needs a small tmpfs, and mounting one needs root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	clk := newClock()
	s := startServerAt(t, strings.Replace(e2eConfig, "{{dir}}/otpgate.db", mnt+"/otpgate.db", 1), clk.Now)
	s.cli(t, "user", "add", "meg", "--tenant", "acme")
	addr := s.addrs[0]
	login := func() {
		t.Helper()
		if p := mustExchange(t, addr, request{user: "meg", password: "pw", callingStation: "192.0.2.4"}); p.Code == radius.CodeAccessChallenge {
			t.Fatalf("got %s, want an answer without a challenge", p.Code)
		}
	}
	written := func() int { // the decisions in the audit log
		return strings.Count(s.cli(t, "audit", "--json", "--limit", "0"), `"client":"guacamole"`)
	}
	metrics := func() string {
		t.Helper()
		status, body := httpGet(t, "http://"+s.metrics+"/metrics")
		if status != 200 {
			t.Fatalf("/metrics: got %d", status)
		}
		return body
	}
	login()
	if status, body := httpGet(t, "http://"+s.metrics+"/healthz"); status != 200 {
		t.Fatalf("/healthz before the disk is full: got %d %q", status, body)
	}
	free := fillDisk(t, mnt)

	const decisions = 1500
	for range decisions {
		login()
	}
	// Every decision is in the log or counted as dropped, once the queue
	// has been written.
	deadline := time.Now().Add(10 * time.Second)
	dropped := 0
	for {
		dropped = metricValue(t, metrics(), "otpgate_audit_dropped_total")
		if w := written(); w+dropped == 1+decisions {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%d entries written and %d dropped, want %d in all", w, dropped, 1+decisions)
		}
	}
	if dropped == 0 {
		t.Fatalf("no audit entry dropped on a full disk: is the file system full?")
	}
	reports := func() []string {
		var out []string
		for _, l := range strings.Split(s.logText(), "\n") {
			if strings.Contains(l, "level=ERROR") && strings.Contains(l, "audit entries dropped") {
				out = append(out, l)
			}
		}
		return out
	}
	s.waitLog(t, 0, "audit entries dropped")
	r := reports()
	if len(r) != 1 {
		t.Fatalf("got %d error lines about dropped entries within 10 s, want 1:\n%s", len(r), strings.Join(r, "\n"))
	}
	// A nearly full disk lets a commit through now and then (bbolt reuses
	// the pages it freed): while the last entry was dropped, /healthz fails.
	for i := 0; ; i++ {
		status, body := httpGet(t, "http://"+s.metrics+"/healthz")
		if status == 503 {
			if !strings.Contains(body, "audit entries dropped") {
				t.Fatalf("/healthz while entries are dropped: got %d %q, want 503 saying audit entries are dropped", status, body)
			}
			break
		}
		if i == 100 {
			t.Fatalf("/healthz stayed %d %q through 100 more logins on a full disk", status, body)
		}
		login()
	}

	// Ten seconds later the next commit reports the drops since the first
	// report, all of them.
	firstTotal, _ := strconv.Atoi(field(r[0], "total"))
	clk.Advance(10 * time.Second)
	skip := s.logLen()
	login()
	l := s.waitLog(t, skip, "audit entries dropped")
	entries, _ := strconv.Atoi(field(l, "entries"))
	total, _ := strconv.Atoi(field(l, "total"))
	if entries == 0 || entries != total-firstTotal {
		t.Errorf("the second report: got entries=%d total=%d, want the %d dropped since the first report", entries, total, total-firstTotal)
	}
	if got := metricValue(t, metrics(), "otpgate_audit_dropped_total"); got < total {
		t.Errorf("otpgate_audit_dropped_total: got %d, want at least %d", got, total)
	}

	// Room again: entries are written, /healthz recovers and the log
	// says so.
	free()
	for i := 0; ; i++ {
		login()
		status, body := httpGet(t, "http://"+s.metrics+"/healthz")
		if status == 200 {
			break
		}
		if i == 100 {
			t.Fatalf("/healthz once there is room again: got %d %q through 100 logins", status, body)
		}
	}
	s.waitLog(t, skip, "audit entries are written again") // after the second report
}
