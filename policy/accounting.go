package policy

import (
	"context"
	"net/netip"

	"github.com/otpgate/otpgate/store"
)

// Session is one Accounting-Request: a gateway telling that a session
// started, stopped or is still going.
type Session struct {
	Client string
	User   string
	// Status is Acct-Status-Type: 1 Start, 2 Stop, 3 Interim-Update, 7
	// Accounting-On, 8 Accounting-Off.
	Status int
	// ID is Acct-Session-Id.
	ID string
	// IP is the end user's address, when the gateway said.
	IP netip.Addr
	// Class is the Class attribute, which the gateway copies from the
	// Accept of the login (RFC 2865 §5.25); empty when it sent none.
	Class string
}

// Account records a session event in the audit log.
func (e *Engine) Account(ctx context.Context, s Session) {
	reason := map[int]string{1: "session_start", 2: "session_stop", 3: "session_update", 7: "accounting_on", 8: "accounting_off"}[s.Status]
	if reason == "" {
		reason = "accounting"
	}
	ip := ""
	if s.IP.IsValid() {
		ip = s.IP.Unmap().String()
	}
	if err := e.db.Audit(store.Entry{
		Time: e.now(), User: store.NormalizeName(s.User), Client: s.Client, IP: ip,
		Decision: "accounting", Reason: reason, Session: s.ID, Class: s.Class,
	}); err != nil {
		e.log.ErrorContext(ctx, "audit write failed", "err", err)
	}
}
