package store

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"
)

// Proven returns when user last proved a code from ip.
func (tx *Tx) Proven(user string, ip netip.Addr) (time.Time, bool) {
	return tx.ProvenFrom(user, ip.Unmap().String())
}

// ProvenFrom returns when user last proved a code from place: an IP
// address, or another key of the proven bucket. (Stores written before
// computer names stopped counting hold "machine:" places too; nothing
// reads them, and Prune removes them as they age.)
func (tx *Tx) ProvenFrom(user, place string) (time.Time, bool) {
	v := tx.kv.get(bucketProven, placeKey(user, place))
	if len(v) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}

// PutProven records that user proved a code from ip at the given time.
func (tx *Tx) PutProven(user string, ip netip.Addr, at time.Time) error {
	return tx.PutProvenFrom(user, ip.Unmap().String(), at)
}

// PutProvenFrom records that user proved a code from place (see ProvenFrom).
func (tx *Tx) PutProvenFrom(user, place string, at time.Time) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(at.UnixNano()))
	return tx.kv.put(bucketProven, placeKey(user, place), v[:])
}

// PutPreapproved lets user's logins through gateways that cannot prompt
// until the given time (a code proved on the sign-in page).
func (tx *Tx) PutPreapproved(user string, until time.Time) error {
	return tx.PutProvenFrom(user, preapprovedPlace, until)
}

// Preapproved returns until when user is pre-approved.
func (tx *Tx) Preapproved(user string) (time.Time, bool) {
	return tx.ProvenFrom(user, preapprovedPlace)
}

// preapprovedPlace is the proven "place" a pre-approval is kept under; no
// IP address or machine name looks like it.
const preapprovedPlace = "preapproved:"

func placeKey(user, place string) []byte {
	return []byte(NormalizeName(user) + "\x00" + place)
}

// Prune removes proven pairs older than provenBefore and send records too
// old to count toward any limit at now, and returns how many records it
// removed. Used TOTP steps have PruneSteps. Run once a minute, it also
// takes the store file's pages read since out of the process's resident
// set (see releaseMapped).
func (db *DB) Prune(now, provenBefore time.Time) (int, error) {
	defer db.releaseMapped() // once a minute, the pages read since go too
	total := 0
	for {
		n := 0
		err := db.Update(func(tx *Tx) error {
			var stale [][]byte
			err := tx.kv.scan(bucketProven, nil, func(k, v []byte) (bool, error) {
				if len(v) != 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(provenBefore) {
					stale = append(stale, bytes.Clone(k))
				}
				return len(stale) < db.maxPruned, nil
			})
			if err != nil {
				return err
			}
			more, err := tx.staleSends(now, db.maxPruned-len(stale))
			if err != nil {
				return err
			}
			for _, k := range stale {
				if err := tx.kv.del(bucketProven, k); err != nil {
					return err
				}
			}
			for _, k := range more {
				if err := tx.kv.del(bucketSends, k); err != nil {
					return err
				}
			}
			n = len(stale) + len(more)
			return nil
		})
		total += n
		if err != nil || n < db.maxPruned {
			return total, err
		}
	}
}
