package store

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// In a cluster each node keeps its audit log in its own file, as a
// single node does, and also writes its entries to etcd, under the
// store's live prefix, where they stay for Etcd.AuditKeep (a lease):
// "otpgate audit" on any node merges the other nodes' recent entries
// with its own file, so that it shows a user's whole story across the
// nodes for that long, and the file's alone before. Entries are written
// together once a second, one key per node and second, so that the cost
// to etcd is one write per node and second, not one per login; a second
// whose write fails (etcd unavailable) is missing from the other nodes'
// view, never from the node's own file. The entries of a second are
// compressed (DEFLATE, fastest level): login entries shrink to about a
// tenth (some 25 bytes each), and every byte written to etcd is sent to,
// logged and stored by each member; at thousands of logins a second the
// entries were most of what etcd wrote.

// sharedAuditMagic starts a value of compressed entries; a value without
// it is the lines themselves, as builds before compression wrote them
// (JSON never starts with a NUL byte).
const sharedAuditMagic = "\x00deflate\n"

// maxSharedAuditValue bounds what one value may inflate to when read: a
// value is written from at most 512 KiB of lines and one entry more.
const maxSharedAuditValue = 4 << 20

// sharedAudit gathers a node's entries for etcd.
type sharedAudit struct {
	mu      sync.Mutex
	pending [][]byte
	lease   clientv3.LeaseID
	renew   time.Time // when to take a new lease
	zw      *flate.Writer
	zbuf    bytes.Buffer
}

// maxSharedPending is the most entries held for etcd while it cannot
// be written; older ones are dropped (they stay in the file).
const maxSharedPending = 10000

func (e *etcdEngine) auditPrefix() string { return livePrefix(e.prefix) + "audit/" }

// shareAudit queues an encoded entry for etcd.
func (e *etcdEngine) shareAudit(v []byte) {
	if e.auditKeep <= 0 {
		return
	}
	e.audit.mu.Lock()
	defer e.audit.mu.Unlock()
	if len(e.audit.pending) >= maxSharedPending {
		e.audit.pending = e.audit.pending[1:]
	}
	e.audit.pending = append(e.audit.pending, v)
}

// shareAuditLoop writes the queued entries every second until ctx ends,
// and once more then.
func (e *etcdEngine) shareAuditLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.flushAudit()
			return
		case <-t.C:
			e.flushAudit()
		}
	}
}

func (e *etcdEngine) flushAudit() {
	e.audit.mu.Lock()
	batch := e.audit.pending
	e.audit.pending = nil
	e.audit.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	now := time.Now()
	if e.audit.lease == 0 || now.After(e.audit.renew) {
		// One lease an hour, of the time kept and that hour: every entry
		// stays at least AuditKeep, at most an hour longer.
		l, err := e.cli.Grant(ctx, int64((e.auditKeep+time.Hour)/time.Second))
		if err != nil {
			e.health.note("write audit entries to etcd", err)
			return
		}
		e.audit.lease, e.audit.renew = l.ID, now.Add(time.Hour)
	}
	for len(batch) > 0 {
		n, size := 0, 0
		for n < len(batch) && size < 512<<10 { // well under etcd's 1.5 MiB request
			size += len(batch[n]) + 1
			n++
		}
		key := fmt.Sprintf("%s%020d-%s", e.auditPrefix(), now.UnixNano(), e.db.node)
		_, err := e.cli.Put(ctx, key, e.audit.compress(batch[:n]), clientv3.WithLease(e.audit.lease))
		if err != nil {
			e.audit.lease = 0
			e.health.note("write audit entries to etcd", err)
			return
		}
		batch = batch[n:]
		now = now.Add(time.Nanosecond)
	}
}

// compress returns the lines as a value to write: sharedAuditMagic and
// the lines, compressed.
func (a *sharedAudit) compress(lines [][]byte) string {
	a.zbuf.Reset()
	a.zbuf.WriteString(sharedAuditMagic)
	if a.zw == nil {
		a.zw, _ = flate.NewWriter(&a.zbuf, flate.BestSpeed) // the level is valid
	} else {
		a.zw.Reset(&a.zbuf)
	}
	for i, l := range lines {
		if i > 0 {
			a.zw.Write([]byte{'\n'}) // into a bytes.Buffer: no error
		}
		a.zw.Write(l)
	}
	a.zw.Close()
	return a.zbuf.String()
}

// sharedAuditLines returns the entries' lines of a value that compress
// (or a build before it) wrote; nil for a value that does not inflate
// within maxSharedAuditValue.
func sharedAuditLines(v []byte) [][]byte {
	if z, ok := bytes.CutPrefix(v, []byte(sharedAuditMagic)); ok {
		r := flate.NewReader(bytes.NewReader(z))
		defer r.Close()
		raw, err := io.ReadAll(io.LimitReader(r, maxSharedAuditValue+1))
		if err != nil || len(raw) > maxSharedAuditValue {
			return nil
		}
		v = raw
	}
	return bytes.Split(v, []byte("\n"))
}

// OthersAudit returns up to limit (zero or less: no limit) entries of the
// other nodes of a cluster, newest first, for which keep returns true,
// from what they wrote to etcd no earlier than since (see the comment
// above); nil on a single node.
func (db *DB) OthersAudit(ctx context.Context, since time.Time, limit int, keep func(Entry) bool) ([]Entry, error) {
	if db.etcd == nil {
		return nil, nil
	}
	e := db.etcd
	from := e.auditPrefix()
	if !since.IsZero() {
		from = fmt.Sprintf("%s%020d", e.auditPrefix(), since.UnixNano())
	}
	end := clientv3.GetPrefixRangeEnd(e.auditPrefix())
	var out []Entry
	for {
		resp, err := e.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(64))
		if err != nil {
			return out, fmt.Errorf("read the other nodes' audit entries from etcd: %w", err)
		}
		for _, kv := range resp.Kvs {
			end = string(kv.Key)
			if strings.HasSuffix(end, "-"+db.node) {
				continue // this node's own: its file has them
			}
			lines := sharedAuditLines(kv.Value)
			for i := len(lines) - 1; i >= 0; i-- {
				var en Entry
				if json.Unmarshal(lines[i], &en) != nil || (keep != nil && !keep(en)) {
					continue
				}
				out = append(out, en)
				if limit > 0 && len(out) >= limit {
					return out, nil
				}
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, nil
		}
	}
}
