package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	bolt "go.etcd.io/bbolt"
	"sync"
	"time"
)

// Entry is one decision in the audit log, or one administrator's command.
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
	// Decision is "accept", "reject" or "challenge"; "accounting" for a
	// session event; "admin" for an administrator's command.
	Decision string `json:"decision"`
	// Reason says why, as a stable word such as "office_network"; for an
	// administrator's command, "ok" or "failed".
	Reason string `json:"reason"`
	// Method is the second factor involved, if any.
	Method string `json:"method,omitempty"`
	// Provider is the delivery provider that took a sent code, if any.
	Provider string `json:"provider,omitempty"`
	// Session is the gateway's session id, for accounting entries.
	Session string `json:"session,omitempty"`
	// Class is the Class attribute of an Accept, and the one an
	// accounting entry's request carried: it joins a session to its login.
	Class string `json:"class,omitempty"`
	// Admin is the administrator's command, when Decision is "admin"; nil
	// for every other entry, so that the entries of logins encode as they
	// always did, and older entries decode with it nil.
	Admin *AdminAct `json:"admin,omitempty"`
	// Node is the node that decided, in a cluster (cluster.node_name);
	// empty for a single node.
	Node string `json:"node,omitempty"`
}

// AdminAct is what an administrator did: the User of its entry is the user
// the command changed, empty when it changed none (reload, backup). It
// holds names of fields, never their values.
type AdminAct struct {
	// Op is the command, such as "user set".
	Op string `json:"op"`
	// Fields names what the command changed or was asked to change, such
	// as "phone" or "totp"; empty when it has no parts (user delete).
	Fields []string `json:"fields,omitempty"`
	// By is who gave it, as "uid 1000 (alice)"; empty when no one can be
	// named (a SIGHUP).
	By string `json:"by,omitempty"`
	// Via is how it came: "admin socket", "local" (the CLI opened the
	// store itself) or "sighup".
	Via string `json:"via"`
	// File is the file a backup was written to; empty otherwise.
	File string `json:"file,omitempty"`
	// Error is the first line of the error of a failed command; empty
	// when it succeeded.
	Error string `json:"error,omitempty"`
}

// Audit queues an entry for the audit log and returns at once. Queued
// entries are written within auditDelay, in a commit of their own or with
// a write that comes meanwhile, and all are on disk once Flush or Close
// returns. An entry that cannot be written (the disk is full) is dropped,
// counted (AuditDropped) and reported in the log, at error level, at most
// once per DropReportEvery.
func (db *DB) Audit(e Entry) error {
	// Encoded here, in the caller's goroutine, to keep the commit short.
	if e.Node == "" {
		e.Node = db.node
	}
	v, err := encodeEntry(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	if db.etcd != nil {
		db.etcd.shareAudit(v)
	}
	return db.enqueue(op{fn: func(tx *Tx) error { return tx.appendAudit(v) }})
}

// AppendAudit writes an entry to the audit log within tx.
// With etcd the entry goes to this node's file once tx is committed.
func (tx *Tx) AppendAudit(e Entry) error {
	if e.Node == "" {
		e.Node = tx.db.node
	}
	v, err := encodeEntry(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	if tx.tx == nil {
		tx.audit = append(tx.audit, v)
		return nil
	}
	return tx.appendAudit(v)
}

func (tx *Tx) appendAudit(v []byte) error {
	tx.bolt.wrote = true
	tx.audited++
	return appendNext(tx.tx.Bucket(bucketAudit), v)
}

// entryTime reads an audit entry's time. Entries as encodeEntry writes
// them start with it; others are decoded whole.
func entryTime(v []byte) (time.Time, bool) {
	const prefix = `{"time":"`
	if rest, ok := bytes.CutPrefix(v, []byte(prefix)); ok {
		if end := bytes.IndexByte(rest, '"'); end > 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(rest[:end])); err == nil {
				return t, true
			}
		}
	}
	var e struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(v, &e) != nil {
		return time.Time{}, false
	}
	return e.Time, true
}

// AuditLog returns up to limit entries, newest first, for which keep
// returns true. A limit of zero or less means no limit.
// The log is this node's own: with etcd, each node keeps its own.
func (tx *Tx) AuditLog(limit int, keep func(Entry) bool) ([]Entry, error) {
	if tx.tx == nil {
		var out []Entry
		err := tx.db.guarded(tx.db.View, func() error {
			return tx.db.bolt.View(func(b *bolt.Tx) error {
				var err error
				out, err = (&Tx{tx: b, db: tx.db}).AuditLog(limit, keep)
				return err
			})
		})
		return out, err
	}
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

// Flush returns once every audit entry queued before the call is on disk
// or dropped (see AuditDropped): a full disk does not keep the audit log
// from being read. It fails only when the store is closed.
func (db *DB) Flush() error {
	if err := db.wait(op{fn: func(*Tx) error { return nil }, flush: true}); errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

// DropReportEvery is the least time between two log lines about dropped
// audit entries; each line says how many were dropped since the last.
const DropReportEvery = 10 * time.Second

// auditDrops counts the audit entries that could not be written, and
// reports them in the log: the first at once, then at most one line per
// DropReportEvery with how many since the last, written at the first
// commit after that time has passed. A disk that is nearly full lets some
// commits through (bbolt reuses the pages it freed) and not others, so
// the reports are spaced by time, not by the failing and succeeding.
type auditDrops struct {
	mu       sync.Mutex
	total    uint64
	unlogged uint64    // dropped since the last report
	logged   time.Time // when the last report was written; zero: none yet
	failing  error     // why the last was dropped; nil once one is written since
	last     error     // why the last was dropped
	told     bool      // a report was written since the last "written again"
}

// note counts the audit entries of one commit: written, or dropped
// because of why.
func (d *auditDrops) note(db *DB, written, dropped int, why error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dropped > 0 {
		d.total += uint64(dropped)
		d.unlogged += uint64(dropped)
		d.failing, d.last = why, why
	} else if written > 0 && d.failing != nil {
		d.failing = nil
		if d.told {
			db.log.Info("audit entries are written again", "dropped_total", d.total)
			d.told = false
		}
	}
	if d.unlogged == 0 {
		return
	}
	if now := db.now(); d.logged.IsZero() || now.Sub(d.logged) >= DropReportEvery {
		db.log.Error("audit entries dropped: the store cannot be written", "entries", d.unlogged, "total", d.total, "err", d.last)
		d.unlogged, d.logged, d.told = 0, now, true
		if d.failing == nil { // a late report, and writes succeed already
			db.log.Info("audit entries are written again", "dropped_total", d.total)
			d.told = false
		}
	}
}

// AuditDropped returns how many audit entries could not be written since
// the store was opened.
func (db *DB) AuditDropped() uint64 {
	db.dropped.mu.Lock()
	defer db.dropped.mu.Unlock()
	return db.dropped.total
}

// AuditFailing returns why the last audit entry was dropped, or nil when
// none was or one has been written since.
func (db *DB) AuditFailing() error {
	db.dropped.mu.Lock()
	defer db.dropped.mu.Unlock()
	if db.dropped.failing == nil {
		return nil
	}
	return fmt.Errorf("%d audit entries dropped, the last: %w", db.dropped.total, db.dropped.failing)
}
