package sms

import (
	"context"
	"errors"
	"fmt"
)

// ErrBusy is returned by a provider that has as many messages in flight as
// its limit allows.
var ErrBusy = errors.New("busy")

// Limit returns p with at most n messages in flight at once. One more
// fails at once with ErrBusy instead of waiting, so that a Chain moves on
// to its next provider and a provider that hangs holds up at most n
// senders.
func Limit(p Provider, n int) Provider {
	return &limited{Provider: p, slots: make(chan struct{}, n)}
}

type limited struct {
	Provider
	slots chan struct{}
}

// Send sends m through the provider if it has room.
func (l *limited) Send(ctx context.Context, m Message) error {
	select {
	case l.slots <- struct{}{}:
	default:
		return fmt.Errorf("%w: %d messages in flight", ErrBusy, cap(l.slots))
	}
	defer func() { <-l.slots }()
	return l.Provider.Send(ctx, m)
}
