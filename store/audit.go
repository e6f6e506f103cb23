package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// Entry is one decision in the audit log.
type Entry struct {
	Time time.Time `json:"time"`
	// User is the login name as normalised; empty when none was sent.
	User string `json:"user"`
	// Tenant is the organisation whose settings decided; empty when unknown.
	Tenant string `json:"tenant,omitempty"`
	// Client is the gateway's configured name.
	Client string `json:"client"`
	// IP is the end user's address; empty when the gateway sent none.
	IP string `json:"ip,omitempty"`
	// Decision is "accept", "reject" or "challenge".
	Decision string `json:"decision"`
	// Reason says why, as a stable word such as "office_network".
	Reason string `json:"reason"`
	// Method is the second factor involved, if any.
	Method string `json:"method,omitempty"`
	// Provider is the delivery provider that took a sent code, if any.
	Provider string `json:"provider,omitempty"`
	// Session is the gateway's session id, for accounting entries.
	Session string `json:"session,omitempty"`
}

// Audit queues an entry for the audit log and returns at once. Queued
// entries are written with the next commit and all are on disk once Close
// returns.
func (db *DB) Audit(e Entry) error {
	// Encoded here, in the caller's goroutine, to keep the commit short.
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	return db.enqueue(op{fn: func(tx *Tx) error { return tx.appendAudit(v) }})
}

// AppendAudit writes an entry to the audit log within tx.
func (tx *Tx) AppendAudit(e Entry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	return tx.appendAudit(v)
}

func (tx *Tx) appendAudit(v []byte) error {
	return appendNext(tx.tx.Bucket(bucketAudit), v)
}

// AuditLog returns up to limit entries, newest first, for which keep
// returns true. A limit of zero or less means no limit.
func (tx *Tx) AuditLog(limit int, keep func(Entry) bool) ([]Entry, error) {
	var out []Entry
	c := tx.tx.Bucket(bucketAudit).Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return out, fmt.Errorf("decode audit entry %x: %w", k, err)
		}
		if keep != nil && !keep(e) {
			continue
		}
		out = append(out, e)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// Flush returns once every audit entry queued before the call is on disk.
func (db *DB) Flush() error {
	return db.Update(func(*Tx) error { return nil })
}
