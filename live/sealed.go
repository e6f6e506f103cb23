package live

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/otpgate/otpgate/store"
)

// A challenge with nothing sent (an authenticator app's code asked for)
// needs no record in etcd: the cluster seals it into the State itself,
// with the server key every node shares, so that asking costs etcd
// nothing and any node opens it. What a record's deletion did, the
// single use, a claim does (store.Claim, named after the State's bytes):
// Take returns the challenge to every taker with its claim, and the
// caller claims it in the one transaction that writes what the answer
// changes (the TOTP step used, a wrong answer counted), which commits only
// if the claim is new: of any number of answers at once, exactly one is
// written, and an answer costs etcd one write, not two. The claim lives,
// under a lease, past the time the State can be answered; a State older
// than that is refused before the claim is looked for.
//
// A challenge that sent a code keeps its record: a login repeated while
// the code is on its way finds it by the login's key (Live), so that
// nothing is sent twice. So does one that carries what a first factor
// said (Reply, Groups), which may not fit in a State.

// sealedPrefix starts a sealed State; record IDs are hexadecimal.
const sealedPrefix = "s"

// sealedVersion is the layout of a sealed challenge.
const sealedVersion = 1

// maxSealedAge is how long after its expiry a sealed State is still
// taken (to be told it has expired rather than that it is unknown); its
// claim lives longer (store.Claim.Until, and the lease's grace past it).
const maxSealedAge = leaseGrace / 2

// sealedEncoding is strict, so that each State has one spelling.
var sealedEncoding = base64.RawURLEncoding.Strict()

// sealable reports whether ch can travel in its State. One that waits
// for the code after a far one (NextStep) keeps its record: at a gateway
// that cannot prompt, the next login finds it by the login's key
// (TakeLive), as it finds nothing sealed, and a phone whose clock is
// ahead could never have its drift learned there.
func sealable(ch Challenge) bool {
	return ch.CodeHash == nil && ch.Salt == "" && ch.Destination == "" && ch.To == "" &&
		ch.Sent.IsZero() && len(ch.Reply) == 0 && len(ch.Groups) == 0 && ch.NextStep == 0 &&
		len(ch.Method) < 256 && len(ch.Enrol) < 256
}

// sealContext binds a sealed State to its use and to the cluster (prefix).
func (c *Cluster) sealContext() string { return "otpgate state v1 " + c.prefix }

// seal returns ch sealed into a State.
func (c *Cluster) seal(ch Challenge) (string, error) {
	b := []byte{sealedVersion}
	b = append(b, owner(ch.User, ch.Client)...)
	b = append(b, byte(len(ch.Method)))
	b = append(b, ch.Method...)
	b = append(b, byte(len(ch.Enrol)))
	b = append(b, ch.Enrol...)
	ip := ch.EndUserIP.Unmap().AsSlice() // nil when invalid
	b = append(b, byte(len(ip)))
	b = append(b, ip...)
	b = binary.AppendUvarint(b, uint64(max(0, ch.Attempts)))
	b = binary.AppendVarint(b, ch.NextStep)
	b = binary.AppendVarint(b, int64(ch.NextDrift))
	flags := byte(0)
	if ch.NoFirstFactor {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, ch.Expires.UnixNano())
	sealed, err := c.Key.Seal(b, c.sealContext())
	if err != nil {
		return "", err
	}
	return sealedPrefix + sealedEncoding.EncodeToString(sealed), nil
}

// errNotSealed: the State is not a sealed one (it names a record).
var errNotSealed = errors.New("not a sealed State")

// unseal opens a sealed State. It returns errNotSealed for one that names
// a record, ErrNotFound for one that no node of this cluster sealed, and
// the challenge, whose owner, and the ID of the claim of its use.
func (c *Cluster) unseal(state string) (ch Challenge, who, claim string, err error) {
	if c.Key == nil || !strings.HasPrefix(state, sealedPrefix) {
		return Challenge{}, "", "", errNotSealed
	}
	if strings.ContainsAny(state, "\r\n") { // skipped by base64: another spelling
		return Challenge{}, "", "", ErrNotFound
	}
	raw, err := sealedEncoding.DecodeString(state[len(sealedPrefix):])
	if err != nil {
		return Challenge{}, "", "", ErrNotFound
	}
	b, err := c.Key.Open(raw, c.sealContext())
	if err != nil {
		return Challenge{}, "", "", ErrNotFound
	}
	ch, who, ok := decodeSealed(b)
	if !ok {
		return Challenge{}, "", "", ErrNotFound
	}
	ch.ID = state
	sum := sha256.Sum256(raw) // the bytes, not their spelling
	return ch, who, "state-" + hex.EncodeToString(sum[:16]), nil
}

// owner is what binds a sealed State to its user and gateway.
func owner(user, client string) []byte {
	h := sha256.Sum256([]byte("owner\x00" + user + "\x00" + client))
	return h[:16]
}

// decodeSealed reads what seal wrote; false when it is not that.
func decodeSealed(b []byte) (ch Challenge, who string, ok bool) {
	r := reader{b: b}
	if r.byte() != sealedVersion {
		return Challenge{}, "", false
	}
	who = string(r.bytes(16))
	ch.Method = string(r.bytes(int(r.byte())))
	ch.Enrol = string(r.bytes(int(r.byte())))
	if ip, ok := netip.AddrFromSlice(r.bytes(int(r.byte()))); ok {
		ch.EndUserIP = ip
	}
	ch.Attempts = int(min(r.uvarint(), 1<<20))
	ch.NextStep = r.varint()
	ch.NextDrift = int(max(min(r.varint(), 1<<20), -1<<20))
	ch.NoFirstFactor = r.byte()&1 != 0
	ch.Expires = time.Unix(0, r.varint())
	return ch, who, !r.bad && len(r.b) == 0
}

// reader reads a sealed challenge, remembering whether it ran short.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if r.bad || n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if r.bad || n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// takeSealed returns the sealed challenge ch with the claim of its single
// use, if it is not too old to claim.
func (c *Cluster) takeSealed(ch Challenge, claim string) (Challenge, error) {
	if c.now().After(ch.Expires.Add(maxSealedAge)) {
		return Challenge{}, ErrNotFound // its claim may be gone
	}
	ch.Claim = store.Claim{User: ch.User, ID: claim, Until: ch.Expires.Add(maxSealedAge)}
	return ch, nil
}
