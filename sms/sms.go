// Package sms delivers one-time codes to people: by text message, and
// through the same interface by voice call or e-mail. Each way of sending is
// a provider; the console provider writes the message to the log so the
// server can be tried without an account anywhere.
package sms

import (
	"context"
	"log/slog"
)

// Message is one code on its way to a user.
type Message struct {
	// Channel is "sms", "voice" or "email".
	Channel string
	// To is the destination: an E.164 number or an e-mail address.
	To string
	// Text is what the user reads or hears, code included.
	Text string
	// Code is the code alone, for providers whose API takes it separately.
	Code string
	// Lang is the tenant's language tag, such as "en" or "nl"; empty means "en".
	Lang string
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

// Name is the provider's name for logs and the audit log.
func (Console) Name() string { return "console" }
