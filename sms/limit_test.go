package sms

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestLimitFailsOverWhenFull: a provider that hangs holds at most its
// limit of senders; the next message goes to the chain's next provider at
// once, and the provider is used again when a message in flight ends.
func TestLimitFailsOverWhenFull(t *testing.T) {
	arrived := make(chan struct{}, 8)
	release := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	var once bool
	open := func() {
		if !once {
			once = true
			close(release)
		}
	}
	t.Cleanup(open) // runs before srv.Close, which waits for handlers
	slow := Limit(mustHTTP(t, "slow", HTTPConfig{URL: srv.URL, Timeout: time.Minute}), 2)
	backup, api := workingProvider(t, "backup")
	chain := Chain{slow, backup}
	m := testMessage()

	type sent struct {
		provider string
		err      error
	}
	results := make(chan sent, 2)
	for range 2 {
		go func() {
			p, err := chain.Send(t.Context(), m)
			results <- sent{p, err}
		}()
	}
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the slow provider did not get two messages")
		}
	}
	// Both slots are taken: a third message does not wait for them.
	if err := slow.Send(t.Context(), m); !errors.Is(err, ErrBusy) {
		t.Errorf("a third message on its own: got %v, want ErrBusy", err)
	}
	if got, err := chain.Send(t.Context(), m); got != "backup" || err != nil {
		t.Errorf("a third message through the chain: got %q, %v, want backup, nil", got, err)
	}
	if got := api.deliveries(); !slices.Equal(got, []delivery{{m.To, m.Text, m.Lang}}) {
		t.Errorf("backup deliveries: got %q, want the one message", got)
	}
	open()
	for range 2 {
		if r := <-results; r.provider != "slow" || r.err != nil {
			t.Errorf("a message in flight: got %q, %v, want slow, nil", r.provider, r.err)
		}
	}
	if got, err := chain.Send(t.Context(), m); got != "slow" || err != nil {
		t.Errorf("after the slow ones ended: got %q, %v, want slow, nil", got, err)
	}
}
