package store

import (
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
	v := tx.tx.Bucket(bucketProven).Get(placeKey(user, place))
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
	return tx.tx.Bucket(bucketProven).Put(placeKey(user, place), v[:])
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
// removed. Used TOTP steps have PruneSteps.
func (db *DB) Prune(now, provenBefore time.Time) (int, error) {
	n := 0
	err := db.Update(func(tx *Tx) error {
		n = 0
		m, err := tx.pruneSends(now)
		if err != nil {
			return err
		}
		n += m
		p := tx.tx.Bucket(bucketProven).Cursor()
		for k, v := p.First(); k != nil; {
			if len(v) != 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(provenBefore) {
				if err := p.Delete(); err != nil {
					return err
				}
				n++
				k, v = p.Seek(k)
				continue
			}
			k, v = p.Next()
		}
		return nil
	})
	return n, err
}
