package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// InviteFlags are the flags of "user invite".
type InviteFlags struct {
	// Via is "sms", "email" or "print"; empty means the user's SMS, else
	// their e-mail.
	Via string `json:"via,omitempty"`
	// Valid is how long the link works; zero means policy.DefaultInviteValid.
	Valid time.Duration `json:"valid,omitempty"`
}

// Inviter sends an invitation link to a user under the send limits
// (policy.Engine does).
type Inviter interface {
	SendInvite(ctx context.Context, u store.User, method, link string, until time.Time) (provider string, err error)
}

// maxInviteValid bounds --valid: a link is a key to an account.
const maxInviteValid = 30 * 24 * time.Hour

// invite gives a user an invitation to enrol on the web page, in place
// of any open one, and sends its link or returns it to print. A link that
// cannot be sent is voided again.
func (s *Service) invite(name string, f *InviteFlags) (string, error) {
	if f == nil {
		f = &InviteFlags{}
	}
	valid := f.Valid
	switch {
	case valid == 0:
		valid = policy.DefaultInviteValid
	case valid < time.Minute || valid > maxInviteValid:
		return "", usagef("--valid %s: want a duration from 1m to %s, such as 72h", valid, maxInviteValid)
	}
	if s.PublicURL == "" {
		return "", usagef("invitation links need the address users open: set web.public_url (and web.listen) in the configuration")
	}
	via := strings.ToLower(f.Via)
	switch via {
	case "", policy.MethodSMS, policy.MethodEmail, "print":
	default:
		return "", usagef("--via %q: want sms, email or print", f.Via)
	}
	var u store.User
	var token string
	now := s.now()
	err := s.DB.Update(func(tx *store.Tx) error {
		var err error
		if u, err = s.user(tx, name); err != nil {
			return err
		}
		if via == "" {
			switch {
			case u.Phone != "":
				via = policy.MethodSMS
			case u.Email != "":
				via = policy.MethodEmail
			default:
				return usagef("%s has no phone or e-mail address to send the link to; hand it over yourself: otpgate user invite %s --via print", u.Name, u.Name)
			}
		}
		if via == policy.MethodSMS && u.Phone == "" || via == policy.MethodEmail && u.Email == "" {
			return usagef("%s has no %s on file; add one with otpgate user set %s --%s ..., or use --via print", u.Name,
				map[string]string{policy.MethodSMS: "phone", policy.MethodEmail: "e-mail address"}[via], u.Name,
				map[string]string{policy.MethodSMS: "phone", policy.MethodEmail: "email"}[via])
		}
		if via != "print" && s.Inviter == nil {
			return fmt.Errorf("no sender for %s is available to this command; use --via print", via)
		}
		var inv store.Invite
		if token, inv, err = policy.NewInvite(s.Rand, s.Key, now, valid, via); err != nil {
			return err
		}
		if err := policy.VoidInvite(tx, &u); err != nil {
			return err
		}
		u.Invite, u.Updated = &inv, now
		if err := tx.PutInvite(inv.Hash, u.Name); err != nil {
			return err
		}
		return tx.PutUser(u)
	})
	if err != nil {
		return "", err
	}
	link := s.PublicURL + "/e/" + token
	until := u.Invite.Expires
	if via == "print" {
		return fmt.Sprintf("Invitation for %s, valid until %s. Hand this link to them; it works once:\n%s\n",
			Printable(u.Name), until.Format(time.RFC3339), link), nil
	}
	provider, err := s.Inviter.SendInvite(context.Background(), u, via, link, until)
	if err != nil {
		if verr := s.DB.Update(func(tx *store.Tx) error {
			cur, err := tx.User(u.Name)
			if err != nil || cur.Invite == nil || string(cur.Invite.Hash) != string(u.Invite.Hash) {
				return err
			}
			if err := policy.VoidInvite(tx, &cur); err != nil {
				return err
			}
			return tx.PutUser(cur)
		}); verr != nil {
			return "", fmt.Errorf("%w; and voiding the unsent invitation failed: %v", err, verr)
		}
		return "", fmt.Errorf("the invitation was not sent, and is void: %w", err)
	}
	return fmt.Sprintf("Invitation for %s sent by %s (%s), valid until %s.\n", Printable(u.Name), via, provider, until.Format(time.RFC3339)), nil
}

// inviteText says whether u has an open invitation, and until when.
func inviteText(u store.User, now time.Time) string {
	switch {
	case u.Invite == nil:
		return "none"
	case !now.Before(u.Invite.Expires):
		return "expired " + u.Invite.Expires.Format(time.RFC3339)
	}
	return fmt.Sprintf("open until %s (%s)", u.Invite.Expires.Format(time.RFC3339), u.Invite.Via)
}
