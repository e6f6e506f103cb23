package live_test

import (
	"errors"
	"testing"
	"time"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/live"
)

// TestSealedNewlines: base64 decoding skips CR and LF even when strict,
// so a State with line breaks put in would open to the same bytes: it is
// refused, and the State as sealed taken with its claim.
func TestSealedNewlines(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	now := epoch
	a, b, _ := sealedNodes(t, etcd, "/nl/", &now)
	for i, spell := range []func(string) string{
		func(s string) string { return s[:5] + "\n" + s[5:] },
		func(s string) string { return s[:9] + "\r\n" + s[9:] + "\n" },
		func(s string) string { return s + "\r" },
	} {
		c := live.Challenge{ID: "ab", User: "alice", Client: "vpn", Method: "totp", Expires: epoch.Add(time.Minute)}
		must(t, a.Put(&c))
		if _, err := b.Take(spell(c.ID), "alice", "vpn"); !errors.Is(err, live.ErrNotFound) {
			t.Errorf("spelling %d: got %v, want ErrNotFound", i, err)
		}
		if ch, err := a.Take(c.ID, "alice", "vpn"); err != nil || ch.Claim.ID == "" {
			t.Errorf("spelling %d: the State as sealed: got %+v, %v, want it with its claim", i, ch.Claim, err)
		}
	}
}
