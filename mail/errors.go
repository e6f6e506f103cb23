package mail

import (
	"context"
	"errors"
	"strings"
	"time"
)

// timeoutError says a delivery gave up after its configured time. It
// matches context.DeadlineExceeded under errors.Is, so callers can tell a
// server that took too long from one that said no.
type timeoutError time.Duration

func (e timeoutError) Error() string { return "timeout after " + time.Duration(e).String() }

// Is reports whether target is context.DeadlineExceeded.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Timeout is true, as net.Error has it.
func (timeoutError) Timeout() bool { return true }

// redactError returns err itself when its message holds none of secrets,
// and otherwise a new error with each of them replaced by "…". Servers
// echo what they were sent; the new error wraps nothing, so the original
// message cannot be reached through it.
func redactError(err error, secrets ...string) error {
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if s != "" {
			clean = strings.ReplaceAll(clean, s, "…")
		}
	}
	if clean != msg {
		return errors.New(clean)
	}
	return err
}
