// Package sms delivers one-time codes to people: by text message, and
// through the same interface by voice call or e-mail. Each way of sending is
// a Provider; a Chain tries several in order. The console provider writes
// the message to the log so the server can be tried without an account
// anywhere.
package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Message is one code on its way to a user.
type Message struct {
	// Channel is "sms", "voice" or "email".
	Channel string
	// To is the destination: an E.164 number ("+31612345678") or an e-mail address.
	To string
	// Text is what the user reads or hears, code included.
	Text string
	// Code is the code alone, for providers whose API takes it separately.
	Code string
	// Lang is the tenant's language tag, such as "en" or "nl"; empty means "en".
	Lang string
}

// Provider sends messages through one service. Send returns nil only when
// the service took the message; its errors never contain the text or code.
type Provider interface {
	// Name is the provider's configured name, for logs and the audit log.
	Name() string
	// Send delivers m, giving up when ctx is done.
	Send(ctx context.Context, m Message) error
}

// Chain is a list of providers for one channel, tried in order.
type Chain []Provider

// Send tries each provider in turn until one takes m, and returns the name
// of the one that did. When all fail the error names each and why.
func (c Chain) Send(ctx context.Context, m Message) (string, error) {
	if len(c) == 0 {
		return "", fmt.Errorf("send %s: no provider configured", m.Channel)
	}
	var errs []error
	for _, p := range c {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		err := p.Send(ctx, m)
		if err == nil {
			return p.Name(), nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
	}
	return "", fmt.Errorf("send %s: %w", m.Channel, errors.Join(errs...))
}

// Console writes each message to a log instead of sending it. It is meant
// for trying otpgate out: the log then holds live codes.
type Console struct {
	Log *slog.Logger
}

// Send logs m. It never fails.
func (c Console) Send(ctx context.Context, m Message) error {
	c.Log.LogAttrs(ctx, slog.LevelWarn, "console delivery (codes in this log are live; configure a real provider for production)",
		slog.String("channel", m.Channel), slog.String("to", m.To), slog.String("text", m.Text))
	return nil
}

// Name is "console".
func (Console) Name() string { return "console" }
