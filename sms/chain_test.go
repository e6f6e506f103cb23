package sms

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// workingProvider is an HTTP provider whose API takes every message and
// records it.
func workingProvider(t *testing.T, name string) (*HTTP, *fakeAPI) {
	t.Helper()
	api := &fakeAPI{}
	srv := serve(t, queryAPI(t, api))
	return mustHTTP(t, name, HTTPConfig{
		Method: "GET",
		URL:    srv.URL + "/send?api_key=k%26y",
		Params: map[string]string{"to": "{{.To}}", "text": "{{.Text}}", "lang": "{{.Lang}}"},
	}), api
}

func TestChainFailsOver(t *testing.T) {
	m := testMessage()
	tests := []struct {
		name  string
		first func(t *testing.T) Provider
	}{
		{"from a server error", func(t *testing.T) Provider {
			return mustHTTP(t, "broken", HTTPConfig{URL: statusServer(t, http.StatusInternalServerError).URL})
		}},
		{"from a hanging provider", func(t *testing.T) Provider {
			return mustHTTP(t, "broken", HTTPConfig{URL: hangingServer(t).URL, Timeout: 200 * time.Millisecond})
		}},
		{"from a refused connection", func(t *testing.T) Provider {
			return mustHTTP(t, "broken", HTTPConfig{URL: "http://" + refusedAddr(t)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			second, api := workingProvider(t, "backup")
			got, err := Chain{tt.first(t), second}.Send(t.Context(), m)
			if got != "backup" || err != nil {
				t.Fatalf("Send: got %q, %v, want backup, nil", got, err)
			}
			if got, want := api.deliveries(), []delivery{{m.To, m.Text, m.Lang}}; !slices.Equal(got, want) {
				t.Errorf("deliveries: got %q, want %q", got, want)
			}
		})
	}
}

func TestChainStopsAtTheFirstThatTakesIt(t *testing.T) {
	first, api1 := workingProvider(t, "primary")
	second, api2 := workingProvider(t, "backup")
	got, err := Chain{first, second}.Send(t.Context(), testMessage())
	if got != "primary" || err != nil {
		t.Fatalf("Send: got %q, %v, want primary, nil", got, err)
	}
	if n1, n2 := len(api1.deliveries()), len(api2.deliveries()); n1 != 1 || n2 != 0 {
		t.Errorf("deliveries: got %d and %d, want 1 and 0", n1, n2)
	}
}

func TestChainAllFail(t *testing.T) {
	chain := Chain{
		mustHTTP(t, "five-hundred", HTTPConfig{URL: statusServer(t, http.StatusInternalServerError).URL}),
		mustHTTP(t, "hanging", HTTPConfig{URL: hangingServer(t).URL, Timeout: 200 * time.Millisecond}),
		mustHTTP(t, "refused", HTTPConfig{URL: "http://" + refusedAddr(t)}),
	}
	m := testMessage()
	got, err := chain.Send(t.Context(), m)
	if got != "" || err == nil {
		t.Fatalf("Send: got %q, %v, want an error", got, err)
	}
	want := []string{
		"send sms: five-hundred: post to http://127.0.0.1:", ": status 500",
		"\nhanging: post to http://127.0.0.1:", ": timeout after 200ms",
		"\nrefused: post to http://127.0.0.1:", "connect: connection refused",
	}
	rest := err.Error()
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("error: got %q, want it to contain %q in order", err, want)
		}
		rest = rest[i+len(w):]
	}
	if strings.Contains(err.Error(), m.Code) {
		t.Errorf("error: got %q, which gives away the code", err)
	}
}

func TestChainStopsWhenContextIsCancelled(t *testing.T) {
	t.Run("while a provider is sending", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		release := make(chan struct{})
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			cancel() // the login gave up while the provider was busy
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		t.Cleanup(func() { close(release) })
		second, api := workingProvider(t, "backup")
		chain := Chain{mustHTTP(t, "slow", HTTPConfig{URL: srv.URL}), second}

		got, err := chain.Send(ctx, testMessage())
		if got != "" || !errors.Is(err, context.Canceled) {
			t.Errorf("Send: got %q, %v, want an error wrapping context.Canceled", got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "slow: post to http://127.0.0.1:") {
			t.Errorf("error: got %q, want it to name slow", err)
		}
		if n := len(api.deliveries()); n != 0 {
			t.Errorf("backup deliveries: got %d, want 0", n)
		}
	})
	t.Run("before the chain starts", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		first, api := workingProvider(t, "primary")
		got, err := Chain{first}.Send(ctx, testMessage())
		if got != "" || !errors.Is(err, context.Canceled) {
			t.Errorf("Send: got %q, %v, want an error wrapping context.Canceled", got, err)
		}
		if n := len(api.deliveries()); n != 0 {
			t.Errorf("deliveries: got %d, want 0", n)
		}
	})
}

func TestChainEmpty(t *testing.T) {
	got, err := Chain(nil).Send(t.Context(), Message{Channel: "voice"})
	if want := "send voice: no provider configured"; got != "" || err == nil || err.Error() != want {
		t.Errorf("Send: got %q, %v, want an error %q", got, err, want)
	}
}
