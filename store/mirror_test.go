package store

import "testing"

// TestMirrorAdvanceForgetsOnlyTombstones: advance forgets the keys known
// absent at or before the revision delivered, and nothing else: not a key
// present, not a tombstone newer than the revision, not a key deleted and
// then written again.
func TestMirrorAdvanceForgetsOnlyTombstones(t *testing.T) {
	m := newMirror()
	m.set("users/alice", []byte("a"), 5, 5)
	m.set("users/bob", nil, 0, 6)   // deleted at 6
	m.set("users/carol", nil, 0, 9) // deleted at 9
	m.set("users/dave", nil, 0, 7)  // deleted at 7, then back at 8
	m.set("users/dave", []byte("d"), 8, 8)
	m.advance(8)
	for key, want := range map[string]bool{"users/alice": true, "users/bob": false, "users/carol": true, "users/dave": true} {
		if _, ok := m.kv[key]; ok != want {
			t.Errorf("after advance(8), %s kept: got %v, want %v", key, ok, want)
		}
	}
	if got := m.get("users/dave"); string(got.v) != "d" {
		t.Errorf("users/dave: got %q, want d", got.v)
	}
	m.advance(9)
	if _, ok := m.kv["users/carol"]; ok {
		t.Error("after advance(9), the tombstone of users/carol is still kept")
	}
	if len(m.gone) != 0 {
		t.Errorf("tombstones still listed after every one was forgotten: %v", m.gone)
	}
}
