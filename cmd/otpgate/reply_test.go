package main

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// integerAttr reads an attribute of type integer, and whether it is there.
func integerAttr(p *radius.Packet, typ radius.Type) (uint32, bool) {
	v, ok := p.Lookup(typ)
	if !ok || len(v) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

// replyMessages is every Reply-Message of p, in order.
func replyMessages(p *radius.Packet) []string {
	var out []string
	for _, a := range p.Attributes {
		if a.Type == rfc2865.ReplyMessage_Type {
			out = append(out, string(a.Attribute))
		}
	}
	return out
}

// TestChallengeTimeoutAndPrompt: an Access-Challenge tells the gateway how
// long the code can still be answered (Session-Timeout, RFC 2865 §5.27) and
// whether to show what the user types (Prompt: No-Echo for a code, Echo for
// a phone number).
func TestChallengeTimeoutAndPrompt(t *testing.T) {
	w := startAccount(t) // code_ttl is the default, 3m
	w.cli(t, "user", "add", "tim", "--tenant", "acme")
	w.cli(t, "user", "totp", "tim", "--secret", testSecret)
	check := func(name string, p *radius.Packet, timeout, prompt uint32) {
		t.Helper()
		if p.Code != radius.CodeAccessChallenge {
			t.Fatalf("%s: got %s, want Access-Challenge", name, p.Code)
		}
		if got, ok := integerAttr(p, rfc2865.SessionTimeout_Type); !ok || got != timeout {
			t.Errorf("%s: Session-Timeout: got %d (present %v), want %d", name, got, ok, timeout)
		}
		if got, ok := integerAttr(p, promptType); !ok || got != prompt {
			t.Errorf("%s: Prompt: got %d (present %v), want %d", name, got, ok, prompt)
		}
	}
	ch := w.login(t, "tim", "203.0.113.5")
	check("TOTP challenge", ch, 180, 0)
	w.clock.Advance(70 * time.Second)
	check("the same login again, 70 s on", w.login(t, "tim", "203.0.113.5"), 110, 0)
	check("a wrong code", w.answer(t, "tim", "203.0.113.5", wrongTOTPAt(t, w.clock.Now()), ch), 110, 0)

	w.cli(t, "user", "add", "phil", "--tenant", "acme")
	ask := w.login(t, "phil", "203.0.113.6")
	check("asked for a phone number", ask, 180, 1)
	sent := w.answer(t, "phil", "203.0.113.6", "06 1234 5678", ask)
	check("a code sent there", sent, 180, 0)

	// An Accept and a Reject carry neither.
	acc := w.answer(t, "phil", "203.0.113.6", w.lastCode(t, "+31612345678"), sent)
	expect(t, acc, radius.CodeAccessAccept, "")
	for _, typ := range []radius.Type{rfc2865.SessionTimeout_Type, promptType} {
		if _, ok := acc.Lookup(typ); ok {
			t.Errorf("Accept carries attribute %d", typ)
		}
	}
}

// TestLongReplyMessage: a text longer than a Reply-Message holds (a long
// code_sent after the resend_wait it is joined to) reaches the gateway
// whole, over several Reply-Messages, as FreeRADIUS's radclient reads them.
func TestLongReplyMessage(t *testing.T) {
	wait := "You asked for a new code too soon: the code we sent a moment ago is still on its way and stays valid. Please wait {seconds} seconds before you ask for another one."
	sent := "We have sent a text message with a six-digit sign-in code to your mobile phone {destination}. Enter the code here to continue, or type resend to get a new code sent to you."
	s := startServerAt(t, strings.Replace(e2eConfig, "code_ttl: 3m,", "code_ttl: 3m, messages: {resend_wait: \""+wait+"\", code_sent: \""+sent+"\"},", 1), newClock().Now)
	s.cli(t, "user", "add", "lisa", "--tenant", "acme", "--phone", "+31612345601")
	addr := s.addrs[0]
	ch := mustExchange(t, addr, request{user: "lisa", password: "pw", callingStation: "203.0.113.9"})
	resent := mustExchange(t, addr, request{user: "lisa", password: "resend", callingStation: "203.0.113.9", state: string(rfc2865.State_Get(ch))})
	parts := replyMessages(resent)
	if len(parts) < 2 {
		t.Fatalf("got %d Reply-Messages, want the text over several: %q", len(parts), parts)
	}
	text := strings.Join(parts, "")
	want := "Please wait 30 seconds before you ask for another one. We have sent a text message with a six-digit sign-in code to your mobile phone +31 6*****01. Enter the code here to continue, or type resend to get a new code sent to you."
	if !strings.HasSuffix(text, want) {
		t.Fatalf("got %q, want it to end %q", text, want)
	}
	for _, p := range parts {
		if len(p) > 253 {
			t.Errorf("a Reply-Message of %d bytes", len(p))
		}
	}

	// radclient, a client we did not write, reads them all.
	out := radclient(t, addr, `User-Name = "lisa"`, `User-Password = "resend"`, `Calling-Station-Id = "203.0.113.9"`,
		`State = 0x`+hexOf(rfc2865.State_Get(resent)), `Message-Authenticator = 0x00`)
	if got := received(t, out); got != "Access-Challenge" {
		t.Fatalf("radclient: got %s, want Access-Challenge:\n%s", got, out)
	}
	if n := strings.Count(out, "Reply-Message = "); n < 2 {
		t.Errorf("radclient shows %d Reply-Messages, want 2 or more:\n%s", n, out)
	}
	if !strings.Contains(out, `or type resend to get a new code sent to you."`) {
		t.Errorf("radclient does not show the end of the text:\n%s", out)
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// promptType is Prompt (RFC 2869 §5.10).
const promptType radius.Type = 76
