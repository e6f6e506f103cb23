package store

import (
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Format is the newest layout of the file this build reads and writes. It
// is recorded in the meta bucket under "format", as decimal text; a store
// that records none is format 1, the layout of the first releases.
//
// Raise Format when a change would make a build misread a store written by
// another: when this build could not read what an older one wrote (a
// bucket or key renamed, a value re-encoded), and also when an older build
// would misread what this one writes (a new field it would ignore at a
// cost, such as one that locks a user out). Add with it the step in
// upgrades that brings a store of the previous format up to the new one.
// A field added with omitempty that older builds may safely ignore needs
// no new format. Each raise gets a store written by the build before it in
// cmd/otpgate/testdata, which TestUpgrade opens and logs in with.
const Format = 2

// metaFormat is the meta key that holds the store's format.
const metaFormat = "format"

// upgrades[i] brings a store of format i+1 to format i+2, within the
// transaction that opens it, before Open creates the buckets it lacks.
// Its length is always Format-1.
var upgrades = []func(tx *bolt.Tx) error{
	// 1 → 2: in a cluster, a user's key under steps/ holds the claims of
	// the sealed States they answered after their newest step (claims.go),
	// which a format-1 build would read as no step at all, and accept a
	// code again. A bbolt file keeps its layout: nothing to do but record
	// the new format, so that a format-1 build refuses it.
	func(*bolt.Tx) error { return nil },
}

// ErrNewerFormat is returned by Open for a store written by a newer build
// in a format this one does not know.
var ErrNewerFormat = errors.New("made by a newer otpgate")

// upgrade checks the format of the store in tx and brings an older one up
// to Format. It runs before anything else is written at open, so a store
// it refuses is left exactly as it was.
func upgrade(tx *bolt.Tx) error {
	found, recorded := 1, false // the first releases recorded no format
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if v := meta.Get([]byte(metaFormat)); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 1 {
				return fmt.Errorf("meta %s is %q, not a format number: the file is damaged or not an otpgate store; restore a backup", metaFormat, v)
			}
			found, recorded = n, true
		}
	}
	if found > Format {
		return fmt.Errorf("%w (format %d); this binary reads up to format %d: upgrade otpgate or restore a backup", ErrNewerFormat, found, Format)
	}
	if found == Format && recorded {
		return nil
	}
	if k, _ := tx.Cursor().First(); k == nil {
		found = Format // a new file: Open makes it in the newest layout
	}
	for v := found; v < Format; v++ {
		if err := upgrades[v-1](tx); err != nil {
			return fmt.Errorf("upgrade from format %d to %d: %w", v, v+1, err)
		}
	}
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return meta.Put([]byte(metaFormat), []byte(strconv.Itoa(Format)))
}
