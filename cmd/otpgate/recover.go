package main

import (
	"fmt"
	"log/slog"
	"net/http"
)

// The store turns a damaged page into an error (see store.ErrDamaged);
// these catch whatever else panics in a goroutine of the server, so that
// one bad record or one bug fails one operation, logged at error level
// with what it was, and the process lives on. RADIUS requests have their
// own (radius.Server), and so do admin commands (admin.Serve).

// safely runs fn and logs a panic in it as the failure of op.
func safely(log *slog.Logger, op string, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("panic", "op", op, "err", fmt.Sprint(v))
		}
	}()
	fn()
}

// recoverHTTP answers 500 to a request whose handler panics, and logs it
// at error level with the request's path.
func recoverHTTP(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic", "op", "web "+r.Method+" "+r.URL.Path, "err", fmt.Sprint(v))
				http.Error(w, "Something went wrong. Please try again later.", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}
