package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

// DefaultInviteValid is how long an invitation link works when the
// administrator gives no --valid.
const DefaultInviteValid = 72 * time.Hour

// maxInviteFailures is how many wrong passwords on an invitation's page
// void it: the link alone must not be a way to guess the password.
const maxInviteFailures = 5

// ErrInviteRefused is returned by SendInvite when a send limit forbids
// the message; its text names the limit.
var ErrInviteRefused = errors.New("a send limit stopped the invitation")

// NewInvite makes an invitation to enrol: a token of 128 random bits in
// hex, for the link, and the record to keep, which holds only its keyed
// hash. rnd nil means crypto/rand.
func NewInvite(rnd io.Reader, key *secret.Key, now time.Time, valid time.Duration, via string) (string, store.Invite, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", store.Invite{}, fmt.Errorf("new invitation: %w", err)
	}
	token := hex.EncodeToString(b)
	return token, store.Invite{Hash: InviteHash(key, token), Created: now, Expires: now.Add(valid), Via: via}, nil
}

// InviteHash is the keyed hash a token is kept under.
func InviteHash(key *secret.Key, token string) []byte { return key.Hash("invite", token) }

// VoidInvite removes u's open invitation, if any, from u and the index;
// the caller stores u.
func VoidInvite(tx *store.Tx, u *store.User) error {
	if u.Invite == nil {
		return nil
	}
	err := tx.DeleteInvite(u.Invite.Hash)
	u.Invite = nil
	return err
}

// SendInvite sends u the link of their invitation by method ("sms" or
// "email"), under the tenant's send limits as any code is, and returns
// the provider that took it.
func (e *Engine) SendInvite(ctx context.Context, u store.User, method, link string, until time.Time) (string, error) {
	t := e.rules().tenants[u.Tenant]
	if t == nil {
		return "", fmt.Errorf("send invitation: tenant %q is not configured", u.Tenant)
	}
	to := u.Phone
	if method == MethodEmail {
		to = u.Email
	}
	sender := e.rules().senders[method]
	if to == "" || sender == nil || (method != MethodSMS && method != MethodEmail) {
		return "", fmt.Errorf("send invitation: %s cannot be used for %s", method, u.Name)
	}
	refused, err := e.reserve(t, u.Name, method, to, e.now())
	if err != nil {
		return "", err
	}
	if refused != "" {
		e.delivered(method, "", refused)
		return "", fmt.Errorf("%w (%s)", ErrInviteRefused, refused)
	}
	msg := message(t, method, to, "")
	msg.Text = fill(t.Messages.InviteText, "{link}", link, "{until}", t.Local(until).Format("2006-01-02 15:04"))
	provider, err := sender.Send(ctx, msg)
	if err != nil {
		e.delivered(method, "", "failed")
		return "", fmt.Errorf("send invitation: %w", err)
	}
	e.delivered(method, provider, "sent")
	e.log.InfoContext(ctx, "invitation sent", "user", u.Name, "method", method, "provider", provider)
	return provider, nil
}
