// Package secret holds the server's own key, kept in a file beside (never
// inside) the store: it seals TOTP secrets at rest and keys the hashes of
// sent codes and recovery codes.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// Key is the server's 256-bit key.
type Key struct {
	raw  []byte // for Subkey only
	seal cipher.AEAD
	hash []byte // subkey for keyed hashes
	id   string
}

// ErrNoKey is returned by Load when the key file does not exist.
var ErrNoKey = errors.New("key file does not exist")

// Load reads a key file: 64 hexadecimal digits and an optional newline.
func Load(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load key %s: %w", path, ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("load key %s: want 64 hexadecimal digits", path)
	}
	return New(raw)
}

// Create writes a new random key to path, which must not exist yet, readable
// by its owner only. A nil rnd means crypto/rand.
func Create(path string, rnd io.Reader) (*Key, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(rnd, raw); err != nil {
		return nil, fmt.Errorf("create key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	if _, err := fmt.Fprintf(f, "%x\n", raw); err != nil {
		f.Close()
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	return New(raw)
}

// New makes a Key from 32 raw bytes.
func New(raw []byte) (*Key, error) {
	if len(raw) != 32 {
		return nil, fmt.Errorf("key must be 32 bytes, got %d", len(raw))
	}
	block, err := aes.NewCipher(derive(raw, "otpgate seal v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{
		raw:  slices.Clone(raw),
		seal: aead,
		hash: derive(raw, "otpgate hash v1"),
		id:   hex.EncodeToString(derive(raw, "otpgate key id v1")[:8]),
	}, nil
}

func derive(raw []byte, label string) []byte {
	m := hmac.New(sha256.New, raw)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Subkey is a key for another use, derived from the server key by an
// HMAC of label, so that every node with the same key file derives the
// same. Labels must differ from those the key itself uses ("otpgate seal
// v1", "otpgate hash v1", "otpgate key id v1").
func (k *Key) Subkey(label string) []byte {
	switch label {
	case "otpgate seal v1", "otpgate hash v1", "otpgate key id v1":
		panic("secret: Subkey of a label the key itself uses: " + label)
	}
	return derive(k.raw, label)
}

// ID names the key without revealing it, so a store can tell whether it is
// opened with the key that sealed it.
func (k *Key) ID() string { return k.id }

// Seal encrypts plaintext; context binds the result to its use (for example
// the user name), so a sealed value cannot be moved to another record.
func (k *Key) Seal(plaintext []byte, context string) ([]byte, error) {
	nonce := make([]byte, k.seal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return k.seal.Seal(nonce, nonce, plaintext, []byte(context)), nil
}

// Open decrypts what Seal made with the same context.
func (k *Key) Open(sealed []byte, context string) ([]byte, error) {
	n := k.seal.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("open sealed value: too short")
	}
	p, err := k.seal.Open(nil, sealed[:n], sealed[n:], []byte(context))
	if err != nil {
		return nil, errors.New("open sealed value: wrong key or damaged value")
	}
	return p, nil
}

// Hash is a keyed hash of value in context, for storing codes that are
// later compared with Equal.
func (k *Key) Hash(context, value string) []byte {
	m := hmac.New(sha256.New, k.hash)
	m.Write([]byte(context))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}

// Equal reports whether value hashes to sum, in constant time.
func (k *Key) Equal(sum []byte, context, value string) bool {
	return subtle.ConstantTimeCompare(sum, k.Hash(context, value)) == 1
}
