package store

import (
	"encoding/json"
	"time"
)

// encodeEntry is json.Marshal(e), byte for byte, written by hand for the
// entries of logins, one per decision: encoding/json's reflection was a
// tenth of what a whitelisted Accept cost. An administrator's entry, a
// time JSON cannot hold, and text that needs escaping take
// encoding/json's own path.
func encodeEntry(e Entry) ([]byte, error) {
	if e.Admin != nil || e.Time.Year() < 0 || e.Time.Year() > 9999 {
		return marshalEntry(e)
	}
	b := make([]byte, 0, 320) // a login's entry fits: one allocation
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	for _, f := range [...]struct {
		name, v   string
		omitEmpty bool
	}{{"user", e.User, false}, {"tenant", e.Tenant, true}, {"client", e.Client, false}, {"ip", e.IP, true},
		{"decision", e.Decision, false}, {"reason", e.Reason, false}, {"method", e.Method, true}, {"provider", e.Provider, true},
		{"session", e.Session, true}, {"class", e.Class, true}, {"node", e.Node, true}} {
		if f.omitEmpty && f.v == "" {
			continue
		}
		if !plainJSON(f.v) {
			return marshalEntry(e)
		}
		b = append(b, `,"`...)
		b = append(b, f.name...)
		b = append(b, `":"`...)
		b = append(b, f.v...)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// plainJSON reports whether encoding/json writes s as it is between
// quotes: printable ASCII without the characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// marshalEntry is encoding/json's path, apart so that e escapes to the
// heap only when it is taken.
func marshalEntry(e Entry) ([]byte, error) { return json.Marshal(e) }
