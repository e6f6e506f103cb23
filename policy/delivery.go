package policy

import (
	"slices"
	"time"

	"github.com/otpgate/otpgate/phone"
	"github.com/otpgate/otpgate/sms"
	"github.com/otpgate/otpgate/store"
)

// Reasons a code is not sent, as written to the audit log.
const (
	limitUserHour       = "limit_user_hour"
	limitDestinationDay = "limit_destination_day"
	limitTenantBudget   = "limit_tenant_budget"
	countryNotAllowed   = "country_not_allowed"
)

// paid reports whether sending by method costs money.
func paid(method string) bool { return method == MethodSMS || method == MethodVoice }

// reserve checks the tenant's limits for one send of method to to and, when
// they allow it, counts the send; the counts live in the store, so a
// restart does not reset them. It returns the limit that forbids the send,
// or "". A send is counted before it is tried: a provider that fails still
// used up the user's allowance, so an attacker cannot hammer one.
func (e *Engine) reserve(t *Tenant, user, method, to string, now time.Time) (string, error) {
	lim := t.Limits
	if paid(method) && len(lim.Countries) > 0 && !slices.Contains(lim.Countries, phone.CountryCode(to)) {
		return countryNotAllowed, nil
	}
	userKey, toKey, tenantKey := "user:"+user, "to:"+to, "tenant:"+t.Name
	var refused string
	err := e.db.Update(func(tx *store.Tx) error {
		refused = ""
		switch {
		case lim.PerUserPerHour > 0 && tx.CountSends(userKey, now.Add(-time.Hour)) >= lim.PerUserPerHour:
			refused = limitUserHour
		case lim.PerDestinationPerDay > 0 && tx.CountSends(toKey, now.Add(-24*time.Hour)) >= lim.PerDestinationPerDay:
			refused = limitDestinationDay
		case paid(method) && lim.DailyBudget > 0 && tx.DayCount(tenantKey, now) >= lim.DailyBudget:
			refused = limitTenantBudget
		}
		if refused != "" {
			return nil
		}
		if err := tx.RecordSend(userKey, now); err != nil {
			return err
		}
		if err := tx.RecordSend(toKey, now); err != nil {
			return err
		}
		if paid(method) {
			return tx.AddDayCount(tenantKey, now)
		}
		return nil
	})
	return refused, err
}

// refusalMessage is what a user is told when a limit stops a send: to wait
// when it is their own limit, to ask the administrator when it is not.
func refusalMessage(m Messages, reason string) string {
	switch reason {
	case limitUserHour, limitDestinationDay:
		return m.LimitReached
	}
	return m.SendRefused
}

// message is the message that carries code to a user by method.
func message(t *Tenant, method, to, code string) sms.Message {
	text := fill(t.Messages.CodeText, "{code}", code)
	if method == MethodVoice {
		text = fill(t.Messages.VoiceText, "{code}", spell(code))
	}
	return sms.Message{Channel: method, To: to, Code: code, Text: text, Lang: t.Language}
}

// mask is how a destination is shown in prompts.
func mask(method, to string) string {
	if method == MethodEmail {
		return MaskEmail(to)
	}
	return phone.Mask(to)
}
