package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// logWriter hands log lines to w from a goroutine of its own, so that a
// request never waits for a write to the terminal or the journal. Lines
// that come while a write is under way go together in the next one: under
// load many lines cost one write, and when it is quiet each line is
// written at once. Flush waits for the lines so far; Close writes what is
// left.
type logWriter struct {
	w    io.Writer
	wake chan struct{} // a line is waiting
	done chan struct{} // run has written the last

	mu       sync.Mutex
	room     sync.Cond // signalled when buf has been taken, and when written
	buf      []byte
	appended int64 // bytes ever put in buf
	written  int64 // bytes ever handed to w
	closed   bool

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
	l.appended += int64(len(p))
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
			l.mu.Lock()
			l.written += int64(len(out))
			l.room.Broadcast()
			l.mu.Unlock()
		}
	}
}

// Flush waits until the lines written before it have been handed to w.
func (l *logWriter) Flush() {
	l.mu.Lock()
	target := l.appended
	for l.written < target && !l.closed {
		l.room.Wait()
	}
	closed := l.closed
	l.mu.Unlock()
	if closed {
		<-l.done
	}
}

// flushingHandler makes warnings and errors reach the log before the call
// that logged them returns: they are what an admin acts on (and where the
// console provider puts its codes), and what a crash must not take with it.
type flushingHandler struct {
	slog.Handler
	w *logWriter
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.w.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(as), h.w}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.w}
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
