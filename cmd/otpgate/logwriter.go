package main

import (
	"io"
	"sync"
)

// logWriter hands log lines to w from a goroutine of its own, so that a
// request never waits for a write to the terminal or the journal. Lines
// that come while a write is under way go together in the next one: under
// load many lines cost one write, and when it is quiet each line is
// written at once. Close writes what is left.
type logWriter struct {
	w    io.Writer
	wake chan struct{} // a line is waiting
	done chan struct{} // run has written the last

	mu     sync.Mutex
	room   sync.Cond // signalled when buf has been taken
	buf    []byte
	closed bool

	direct sync.Mutex // for writes after Close
}

// maxWaitingLog is how many bytes may wait before Write waits too, so that
// a stuck terminal slows logging down instead of filling the memory.
const maxWaitingLog = 1 << 20

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: w, wake: make(chan struct{}, 1), done: make(chan struct{})}
	l.room.L = &l.mu
	go l.run()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	for len(l.buf) >= maxWaitingLog && !l.closed {
		l.room.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		<-l.done // after the lines written before
		l.direct.Lock()
		defer l.direct.Unlock()
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	select {
	case l.wake <- struct{}{}:
	default: // run is awake already and will take this line too
	}
	l.mu.Unlock()
	return len(p), nil
}

func (l *logWriter) run() {
	defer close(l.done)
	var out []byte
	// Every line appended is followed by a wake-up, and none are appended
	// once wake is closed: when the loop ends, all are written.
	for range l.wake {
		l.mu.Lock()
		out, l.buf = l.buf, out[:0]
		l.room.Broadcast()
		l.mu.Unlock()
		if len(out) > 0 {
			l.w.Write(out) // a log that cannot be written has nowhere to say so
		}
	}
}

// Close writes the lines still waiting and makes later writes go straight
// to w.
func (l *logWriter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.wake)
	l.room.Broadcast()
	l.mu.Unlock()
	<-l.done
	return nil
}
