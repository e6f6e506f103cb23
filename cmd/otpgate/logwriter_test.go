package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a writer that counts its writes.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	block  chan struct{} // when set, the first write waits for it
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	if w.block != nil {
		<-w.block
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.b.Write(p)
}

// Every line arrives whole and in order, also those written after Close,
// and lines that come while a write is under way share the next one.
func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	out := &lockedBuffer{block: make(chan struct{})}
	l := newLogWriter(out)
	var want strings.Builder
	for i := range 1000 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if n, err := l.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	close(out.block) // the terminal was slow; now it takes them
	l.Close()
	if _, err := l.Write([]byte("after close\n")); err != nil {
		t.Fatal(err)
	}
	want.WriteString("after close\n")
	if got := out.b.String(); got != want.String() {
		t.Fatalf("written:\n%.200s...\nwant:\n%.200s...", got, want.String())
	}
	// The first line woke the writer, which waited on the terminal while
	// the other 999 came: they go in one write, and the line after Close in
	// its own.
	if out.writes > 3 {
		t.Errorf("writes: got %d for 1001 lines, want at most 3", out.writes)
	}
}

func TestLogWriterConcurrentWriters(t *testing.T) {
	out := &lockedBuffer{}
	l := newLogWriter(out)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				fmt.Fprintf(l, "g%d %d\n", g, i)
			}
		})
	}
	wg.Wait()
	l.Close()
	lines := strings.Split(strings.TrimSuffix(out.b.String(), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("lines: got %d, want 1600", len(lines))
	}
	next := map[string]int{}
	for _, line := range lines {
		var g string
		var i int
		if _, err := fmt.Sscanf(line, "%s %d", &g, &i); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if i != next[g] {
			t.Fatalf("%s: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
}

// A warning is written by the time the call that logged it returns, with
// every line before it; an info line may still be on its way.
func TestLoggerWritesWarningsBeforeReturning(t *testing.T) {
	out := &lockedBuffer{}
	l := newLogWriter(out)
	defer l.Close()
	log := newLogger(&settings{logLevel: "info", logFormat: "text"}, l)
	for i := range 100 {
		log.Info("before", "i", i)
	}
	log.Warn("console delivery", "text", "Your login code is 123456")
	out.mu.Lock()
	got := out.b.String()
	out.mu.Unlock()
	if !strings.Contains(got, "Your login code is 123456") || strings.Count(got, "msg=before") != 100 {
		t.Fatalf("written when Warn returned:\n%s", got)
	}
}
