package sms

import (
	"context"
	"errors"
	"strings"
	"time"
)

// timeoutError says a provider gave up after its configured time. It
// matches context.DeadlineExceeded under errors.Is, so callers can tell a
// provider that took too long from one that said no.
type timeoutError time.Duration

func (e timeoutError) Error() string { return "timeout after " + time.Duration(e).String() }

// Is reports whether target is context.DeadlineExceeded.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Timeout is true, as net.Error has it.
func (timeoutError) Timeout() bool { return true }

// redact replaces each occurrence of m's text and of its code in s with
// "…". Programs and services echo what they were sent; their words go into
// errors, and errors into logs, only through here.
func redact(s string, m Message) string {
	for _, secret := range []string{m.Text, m.Code} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "…")
		}
	}
	return s
}

// redactError returns err itself when its message holds neither m's text
// nor its code, and otherwise a new error with them taken out. The new one
// wraps nothing, so the original message cannot be reached through it.
func redactError(err error, m Message) error {
	msg := err.Error()
	if clean := redact(msg, m); clean != msg {
		return errors.New(clean)
	}
	return err
}
