package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A transaction larger than etcd takes at once (maxEtcdOps, its
// --max-txn-ops; "user import" of thousands of users) is committed in
// chunks, all or nothing:
//
//   - a marker key under a lease says the bulk write is under way;
//   - each chunk writes its keys only if each is as the transaction read
//     it, and, in the same etcd transaction, an undo record: the values
//     the keys had before. The record's revision is the chunk's;
//   - the last step deletes the marker and the undo records in one etcd
//     transaction, if the marker is still there: that is the commit.
//
// A chunk that finds a key changed undoes the chunks before it (a key is
// set back only if it is still as the chunk wrote it) and the function
// runs again, as for any conflict. A writer that dies half way leaves
// undo records without a marker, once its lease ends: the next node to
// open the store, or the next bulk write, sets the keys back. Until the
// commit, other nodes may see the first chunks' keys: a user of an
// import may log in a moment before the import is done, or undone.

// bulkLease is how long a bulk write may take before others take it for
// dead and undo it.
const bulkLease = 60 // seconds

// bulkChunk is the most keys in one chunk: one operation is left for the
// undo record, one compare for the marker.
const bulkChunk = maxEtcdOps - 1

// undoKey is one key's value before a chunk wrote it.
type undoKey struct {
	Key string `json:"k"`
	Old []byte `json:"v,omitempty"` // nil: the key was absent
}

func (e *etcdEngine) bulkMarker(id int64) string {
	return fmt.Sprintf("%sbulk/%x", livePrefix(e.prefix), id)
}

func (e *etcdEngine) undoPrefix(id int64) string {
	return fmt.Sprintf("%sundo/%x/", livePrefix(e.prefix), id)
}

// commitBulk is commit for a transaction of more keys than etcd takes at
// once.
func (e *etcdEngine) commitBulk(t *etcdKV) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*e.timeout+bulkLease*time.Second)
	defer cancel()
	if err := e.recoverBulk(ctx); err != nil {
		return false, err
	}
	// Every key written is compared, at the revision whose value the undo
	// record keeps; a key read and not written, at the one read.
	t.expandPrefixes()
	cmp := map[string]int64{}
	old := map[string][]byte{}
	for k := range t.writes {
		m := e.mirror.get(k)
		if mod, read := t.reads[k]; read && mod != m.mod {
			e.refresh(ctx, []string{k})
			return false, nil
		}
		cmp[k], old[k] = m.mod, m.v
	}
	for k, mod := range t.reads {
		if _, ok := cmp[k]; !ok {
			cmp[k] = mod
		}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range cmp {
			if !yield(k) {
				return
			}
		}
	})
	lease, err := e.cli.Grant(ctx, bulkLease)
	if err != nil {
		return false, e.failed(err)
	}
	marker := e.bulkMarker(int64(lease.ID))
	if _, err := e.cli.Put(ctx, marker, "", clientv3.WithLease(lease.ID)); err != nil {
		return false, e.failed(err)
	}
	var done []int64 // the revisions of the chunks written
	undo := func() {
		if err := e.undoBulk(ctx, int64(lease.ID)); err != nil {
			e.health.note("undo a bulk write that failed half way (the next node to open the store tries again)", err)
			return
		}
		e.cli.Revoke(ctx, lease.ID)
	}
	for n, chunk := range slices.Collect(slices.Chunk(keys, bulkChunk)) {
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.Version(marker), ">", 0)}
		var ops, gets []clientv3.Op
		var rec []undoKey
		for _, k := range chunk {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(e.prefix+k), "=", cmp[k]))
			gets = append(gets, clientv3.OpGet(e.prefix+k))
			v, written := t.writes[k]
			switch {
			case !written:
				continue
			case v != nil:
				ops = append(ops, clientv3.OpPut(e.prefix+k, string(v)))
			default:
				ops = append(ops, clientv3.OpDelete(e.prefix+k))
			}
			rec = append(rec, undoKey{Key: k, Old: old[k]})
		}
		j, err := json.Marshal(rec)
		if err != nil {
			return false, err
		}
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%08d", e.undoPrefix(int64(lease.ID)), n), string(j)))
		resp, err := e.cli.Txn(ctx).If(cmps...).Then(ops...).Else(gets...).Commit()
		if err != nil {
			undo()
			return false, e.failed(err)
		}
		if !resp.Succeeded {
			e.mirror.mu.Lock()
			for i, r := range resp.Responses {
				if kvs := r.GetResponseRange().GetKvs(); len(kvs) == 1 {
					e.mirror.setLocked(chunk[i], kvs[0].Value, kvs[0].ModRevision, resp.Header.Revision)
				} else {
					e.mirror.setLocked(chunk[i], nil, 0, resp.Header.Revision)
				}
			}
			e.mirror.mu.Unlock()
			undo()
			return false, nil
		}
		done = append(done, resp.Header.Revision)
		e.mirror.mu.Lock()
		for _, k := range chunk {
			if v, ok := t.writes[k]; ok && v != nil {
				e.mirror.kv[k] = mirrored{v: v, mod: resp.Header.Revision, at: resp.Header.Revision}
			} else if ok {
				e.mirror.putLocked(k, mirrored{at: resp.Header.Revision})
			}
		}
		e.mirror.mu.Unlock()
		if e.afterChunk != nil {
			e.afterChunk(n)
		}
	}
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(marker), ">", 0)).
		Then(clientv3.OpDelete(e.undoPrefix(int64(lease.ID)), clientv3.WithPrefix()), clientv3.OpDelete(marker)).Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("the bulk write took more than %d s, and was taken for dead", bulkLease)
	}
	if err != nil {
		undo()
		return false, fmt.Errorf("commit %d keys to etcd in %d chunks: %w", len(keys), len(done), err)
	}
	e.cli.Revoke(ctx, lease.ID)
	return true, nil
}

// failed is the error of a write etcd did not take.
func (e *etcdEngine) failed(err error) error {
	if unreachable(err) {
		e.health.tried(err)
		return fmt.Errorf("commit: %w: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("commit to etcd: %w", err)
}

// refresh reads keys from etcd into the mirror.
func (e *etcdEngine) refresh(ctx context.Context, keys []string) {
	for _, k := range keys {
		if resp, err := e.cli.Get(ctx, e.prefix+k); err == nil {
			if len(resp.Kvs) == 1 {
				e.mirror.set(k, resp.Kvs[0].Value, resp.Kvs[0].ModRevision, resp.Header.Revision)
			} else {
				e.mirror.set(k, nil, 0, resp.Header.Revision)
			}
		}
	}
}

// expandPrefixes turns the prefixes deleted into the keys under them,
// as the mirror knows them: a chunk deletes keys one by one.
func (t *etcdKV) expandPrefixes() {
	for _, w := range t.order {
		if !w.prefix {
			continue
		}
		for _, k := range t.e.mirror.scan(w.key) {
			if _, ok := t.writes[k]; !ok {
				t.writes[k] = nil
			}
		}
	}
	t.order = slices.DeleteFunc(t.order, func(w written) bool { return w.prefix })
}

// undoBulk sets back the keys of bulk write id's chunks, each only if it
// is still as the chunk wrote it, and deletes its undo records.
func (e *etcdEngine) undoBulk(ctx context.Context, id int64) error {
	resp, err := e.cli.Get(ctx, e.undoPrefix(id), clientv3.WithPrefix())
	if err != nil {
		return err
	}
	for _, kv := range resp.Kvs {
		var rec []undoKey
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return fmt.Errorf("undo record %s: %w", kv.Key, err)
		}
		for _, u := range rec {
			op := clientv3.OpDelete(e.prefix + u.Key)
			if u.Old != nil {
				op = clientv3.OpPut(e.prefix+u.Key, string(u.Old))
			}
			// Set back only what nobody wrote since: the chunk wrote the
			// key and its record at one revision.
			if _, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(e.prefix+u.Key), "=", kv.ModRevision)).Then(op).Commit(); err != nil {
				return err
			}
		}
		if _, err := e.cli.Delete(ctx, string(kv.Key)); err != nil {
			return err
		}
	}
	return nil
}

// recoverBulk undoes the bulk writes whose writer died half way: undo
// records without their marker.
func (e *etcdEngine) recoverBulk(ctx context.Context) error {
	resp, err := e.cli.Get(ctx, livePrefix(e.prefix)+"undo/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return e.failed(err)
	}
	seen := map[int64]bool{}
	for _, kv := range resp.Kvs {
		var id int64
		rest := strings.TrimPrefix(string(kv.Key), livePrefix(e.prefix)+"undo/")
		if _, err := fmt.Sscanf(rest, "%x/", &id); err != nil || seen[id] {
			continue
		}
		seen[id] = true
		m, err := e.cli.Get(ctx, e.bulkMarker(id), clientv3.WithCountOnly())
		if err != nil {
			return e.failed(err)
		}
		if m.Count > 0 {
			continue // under way
		}
		if err := e.undoBulk(ctx, id); err != nil {
			return fmt.Errorf("undo a bulk write left half way: %w", e.failed(err))
		}
		e.db.log.Warn("undid a bulk write (user import) that a node left half way", "store", e.where())
	}
	return nil
}
