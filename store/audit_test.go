package store_test

import (
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store"
)

func entry(i int) store.Entry {
	return store.Entry{
		Time:     epoch.Add(time.Duration(i) * time.Second),
		User:     fmt.Sprintf("user%04d", i),
		Tenant:   "acme",
		Client:   "citrix",
		IP:       "192.0.2.1",
		Decision: []string{"accept", "reject", "challenge"}[i%3],
		Reason:   "reason",
		Method:   "totp",
	}
}

func auditLog(t *testing.T, db *store.DB, limit int, keep func(store.Entry) bool) []store.Entry {
	t.Helper()
	var out []store.Entry
	mustView(t, db, func(tx *store.Tx) error {
		var err error
		out, err = tx.AuditLog(limit, keep)
		return err
	})
	return out
}

func users(es []store.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.User)
	}
	return out
}

func TestAuditSurvivesClose(t *testing.T) {
	// Audit returns before the entry is written; Close must not lose any.
	path := tempPath(t)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		if err := db.Audit(entry(i)); err != nil {
			t.Fatalf("Audit %d: %v", i, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path)
	got := auditLog(t, db, 0, nil)
	if len(got) != n {
		t.Fatalf("got %d entries after reopen, want %d", len(got), n)
	}
	for i, e := range got {
		// Newest first.
		if want := entry(n - 1 - i); !reflect.DeepEqual(normal(e), normal(want)) {
			t.Fatalf("entry %d: got %+v, want %+v", i, e, want)
		}
	}
}

func TestAuditConcurrentSurvivesClose(t *testing.T) {
	path := tempPath(t)
	db, err := store.Open(path, store.Options{MaxBatch: 16})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 20, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := db.Audit(entry(w*each + i)); err != nil {
					t.Errorf("Audit: %v", err)
				}
				if i%10 == 0 {
					// Updates interleave with queued entries.
					if err := db.Update(func(tx *store.Tx) error { return tx.PutMeta(fmt.Sprint(w), []byte{byte(i)}) }); err != nil {
						t.Errorf("Update: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	got := auditLog(t, db, 0, nil)
	seen := map[string]bool{}
	for _, e := range got {
		seen[e.User] = true
	}
	if len(got) != writers*each || len(seen) != writers*each {
		t.Errorf("got %d entries (%d distinct), want %d", len(got), len(seen), writers*each)
	}
}

func TestAuditFlushed(t *testing.T) {
	db := open(t, tempPath(t))
	if err := db.Audit(entry(1)); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	got := auditLog(t, db, 0, nil)
	if !reflect.DeepEqual(users(got), []string{"user0001"}) {
		t.Errorf("got %v after Flush, want [user0001]", users(got))
	}
}

func TestAuditOrderWithUpdate(t *testing.T) {
	// An entry an Update appends comes after the entries queued before it,
	// although those wait for a commit of their own otherwise.
	db := open(t, tempPath(t))
	if err := db.Audit(entry(1)); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.AppendAudit(entry(2)) })
	if err := db.Audit(entry(3)); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := users(auditLog(t, db, 0, nil)), []string{"user0003", "user0002", "user0001"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v (newest first)", got, want)
	}
}

func TestAuditWrittenWithoutAWriter(t *testing.T) {
	// No write anyone waits for comes after the entry: it is committed on
	// its own, shortly.
	db := open(t, tempPath(t))
	if err := db.Audit(entry(1)); err != nil {
		t.Fatal(err)
	}
	for len(auditLog(t, db, 0, nil)) == 0 {
		runtime.Gosched()
	}
	if got := users(auditLog(t, db, 0, nil)); !reflect.DeepEqual(got, []string{"user0001"}) {
		t.Errorf("got %v, want [user0001]", got)
	}
}

func TestAuditLogLimitAndFilter(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error {
		for i := range 10 {
			if err := tx.AppendAudit(entry(i)); err != nil {
				return err
			}
		}
		return nil
	})
	rejects := func(e store.Entry) bool { return e.Decision == "reject" }
	none := func(store.Entry) bool { return false }
	tests := []struct {
		name  string
		limit int
		keep  func(store.Entry) bool
		want  []string
	}{
		{"all", 0, nil, []string{"user0009", "user0008", "user0007", "user0006", "user0005", "user0004", "user0003", "user0002", "user0001", "user0000"}},
		{"negative limit", -1, nil, []string{"user0009", "user0008", "user0007", "user0006", "user0005", "user0004", "user0003", "user0002", "user0001", "user0000"}},
		{"limit 3", 3, nil, []string{"user0009", "user0008", "user0007"}},
		{"limit 1", 1, nil, []string{"user0009"}},
		{"limit above size", 50, nil, []string{"user0009", "user0008", "user0007", "user0006", "user0005", "user0004", "user0003", "user0002", "user0001", "user0000"}},
		{"rejects", 0, rejects, []string{"user0007", "user0004", "user0001"}},
		{"rejects limit 2", 2, rejects, []string{"user0007", "user0004"}},
		{"nothing kept", 5, none, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := users(auditLog(t, db, tt.limit, tt.keep)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAuditLogEmpty(t *testing.T) {
	db := open(t, tempPath(t))
	if got := auditLog(t, db, 10, nil); len(got) != 0 {
		t.Errorf("got %v, want no entries", got)
	}
}

func TestAuditEntryFields(t *testing.T) {
	db := open(t, tempPath(t))
	in := store.Entry{
		Time: epoch, User: "alice", Tenant: "acme", Client: "citrix", IP: "2001:db8::1",
		Decision: "challenge", Reason: "challenge", Method: "sms",
	}
	bare := store.Entry{Time: epoch.Add(time.Second), Client: "vpn", Decision: "reject", Reason: "no_user_name"}
	if err := db.Audit(in); err != nil {
		t.Fatal(err)
	}
	if err := db.Audit(bare); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	got := auditLog(t, db, 0, nil)
	if len(got) != 2 {
		t.Fatalf("got %d entries, want 2", len(got))
	}
	if !reflect.DeepEqual(normal(got[0]), normal(bare)) {
		t.Errorf("got %+v, want %+v", got[0], bare)
	}
	if !reflect.DeepEqual(normal(got[1]), normal(in)) {
		t.Errorf("got %+v, want %+v", got[1], in)
	}
}

// normal puts an entry's time in UTC, as JSON keeps the instant only.
func normal(e store.Entry) store.Entry {
	e.Time = e.Time.UTC()
	return e
}

func TestPruneAudit(t *testing.T) {
	db := open(t, tempPath(t))
	for i := range 5 {
		e := entry(i)
		e.Time = epoch.Add(time.Duration(i) * time.Hour)
		mustUpdate(t, db, func(tx *store.Tx) error { return tx.AppendAudit(e) })
	}
	n, err := db.PruneAudit(epoch.Add(2 * time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PruneAudit: got %d, %v, want 2", n, err)
	}
	if got := len(auditLog(t, db, 0, nil)); got != 3 {
		t.Errorf("got %d entries left, want 3", got)
	}
}

// TestPruneAuditInBoundedTransactions: one call removes at most
// MaxPrunedAudit entries, so that the logins' writes queued behind it
// wait for a short transaction; calling it again removes the rest.
func TestPruneAuditInBoundedTransactions(t *testing.T) {
	db := open(t, tempPath(t))
	old := store.MaxPrunedAudit + 500
	mustUpdate(t, db, func(tx *store.Tx) error {
		for i := range old + 3 {
			e := entry(i)
			e.Time = epoch.Add(time.Duration(i) * time.Second)
			if i >= old {
				e.Time = epoch.Add(24 * time.Hour)
			}
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
	before := epoch.Add(time.Hour)
	n, err := db.PruneAudit(before)
	if err != nil || n != store.MaxPrunedAudit {
		t.Fatalf("first PruneAudit: got %d, %v, want %d", n, err, store.MaxPrunedAudit)
	}
	if n, err = db.PruneAudit(before); err != nil || n != 500 {
		t.Fatalf("second PruneAudit: got %d, %v, want 500", n, err)
	}
	if got := len(auditLog(t, db, 0, nil)); got != 3 {
		t.Errorf("got %d entries left, want the 3 newer than the cut", got)
	}
}

// TestAuditCommitsTrimTheLog: with a retention set, a commit that appends
// audit entries removes, from the log's start, as many entries past it as
// it appends and 64 more: the log stays near its retention without a
// minute's worth of deletes at once. Entries within the retention stay,
// whatever the count, and without a retention nothing is removed.
func TestAuditCommitsTrimTheLog(t *testing.T) {
	const slack = 64
	for _, tc := range []struct {
		name      string
		keep      time.Duration
		appended  int
		wantTrims int
	}{
		{"one appended", time.Hour, 1, 1 + slack},
		{"ten appended", time.Hour, 10, 10 + slack},
		{"more appended than are old", time.Hour, 400, 300},
		{"no retention", 0, 10, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := epoch
			db, err := store.Open(tempPath(t), store.Options{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			// 300 entries an hour and more old, then 5 within the hour.
			mustUpdate(t, db, func(tx *store.Tx) error {
				for i := range 305 {
					e := entry(i)
					e.Time = epoch.Add(time.Duration(i) * time.Second)
					if i >= 300 {
						e.Time = epoch.Add(2*time.Hour + time.Duration(i-300)*time.Second)
					}
					if err := tx.AppendAudit(e); err != nil {
						return err
					}
				}
				return nil
			})
			db.SetAuditKeep(tc.keep)
			now = epoch.Add(2*time.Hour + time.Minute) // 300 entries are past the hour, 5 are not
			mustUpdate(t, db, func(tx *store.Tx) error {
				for i := range tc.appended {
					e := entry(1000 + i)
					e.Time = now
					if err := tx.AppendAudit(e); err != nil {
						return err
					}
				}
				return nil
			})
			es := auditLog(t, db, 0, nil)
			if want := 305 + tc.appended - tc.wantTrims; len(es) != want {
				t.Fatalf("got %d entries, want %d (%d trimmed)", len(es), want, tc.wantTrims)
			}
			// Newest first: what is left is the newest, in order, and
			// every entry within the hour is there.
			for i, e := range es {
				if i > 0 && e.Time.After(es[i-1].Time) {
					t.Fatalf("entry %d (%v) after entry %d (%v)", i, e.Time, i-1, es[i-1].Time)
				}
			}
			recent := 0
			for _, e := range es {
				if !e.Time.Before(now.Add(-time.Hour)) {
					recent++
				}
			}
			if recent != 5+tc.appended {
				t.Errorf("got %d entries within the hour, want all %d", recent, 5+tc.appended)
			}
		})
	}
}

// TestAuditTrimQueuedEntries: entries queued by Audit, committed on their
// own, trim the log as well.
func TestAuditTrimQueuedEntries(t *testing.T) {
	now := epoch
	db, err := store.Open(tempPath(t), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i := range 200 {
		e := entry(i)
		if err := db.Audit(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	db.SetAuditKeep(time.Minute)
	now = epoch.Add(time.Hour)
	e := entry(500)
	e.Time = now
	if err := db.Audit(e); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	// One entry committed on its own takes 1 + 64 old ones with it.
	if got, want := len(auditLog(t, db, 0, nil)), 201-65; got != want {
		t.Errorf("got %d entries, want %d", got, want)
	}
}
