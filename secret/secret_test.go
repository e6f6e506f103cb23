package secret_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/secret"
)

// raw returns 32 key bytes starting at first.
func raw(first byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = first + byte(i)
	}
	return b
}

func newKey(t *testing.T, first byte) *secret.Key {
	t.Helper()
	k, err := secret.New(raw(first))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return k
}

func TestNewLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := secret.New(make([]byte, n)); err == nil {
			t.Errorf("New(%d bytes): got nil error, want one", n)
		}
	}
	if _, err := secret.New(make([]byte, 32)); err != nil {
		t.Errorf("New(32 bytes): got %v, want nil", err)
	}
}

func TestSealOpen(t *testing.T) {
	k := newKey(t, 0)
	tests := []struct {
		name      string
		plaintext []byte
		context   string
	}{
		{"totp secret", []byte("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "totp:alice"},
		{"empty", []byte{}, "totp:bob"},
		{"binary", []byte{0, 1, 2, 255}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := k.Seal(tt.plaintext, tt.context)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if len(tt.plaintext) > 0 && bytes.Contains(sealed, tt.plaintext) {
				t.Errorf("sealed value %x contains the plaintext", sealed)
			}
			got, err := k.Open(sealed, tt.context)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("got %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestSealIsRandomised(t *testing.T) {
	k := newKey(t, 0)
	a, err := k.Seal([]byte("same"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Seal([]byte("same"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two seals of the same value are equal (%x): want a fresh nonce each time", a)
	}
}

func TestOpenFails(t *testing.T) {
	k := newKey(t, 0)
	sealed, err := k.Seal([]byte("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "totp:alice")
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	nonceFlipped := bytes.Clone(sealed)
	nonceFlipped[0] ^= 1

	tests := []struct {
		name    string
		key     *secret.Key
		sealed  []byte
		context string
	}{
		{"wrong context", k, sealed, "totp:bob"},
		{"empty context", k, sealed, ""},
		{"other key", newKey(t, 1), sealed, "totp:alice"},
		{"damaged tag", k, flipped, "totp:alice"},
		{"damaged nonce", k, nonceFlipped, "totp:alice"},
		{"truncated", k, sealed[:len(sealed)-1], "totp:alice"},
		{"nonce only", k, sealed[:12], "totp:alice"},
		{"too short", k, sealed[:5], "totp:alice"},
		{"empty", k, nil, "totp:alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.key.Open(tt.sealed, tt.context)
			if err == nil {
				t.Fatalf("got %q and nil error, want an error", got)
			}
			if got != nil {
				t.Errorf("got plaintext %q with the error, want nil", got)
			}
		})
	}
}

func TestID(t *testing.T) {
	a, a2, b := newKey(t, 0), newKey(t, 0), newKey(t, 1)
	if a.ID() != a2.ID() {
		t.Errorf("same raw key: got IDs %s and %s, want equal", a.ID(), a2.ID())
	}
	if a.ID() == b.ID() {
		t.Errorf("different raw keys: both have ID %s", a.ID())
	}
	if len(a.ID()) != 16 || strings.Trim(a.ID(), "0123456789abcdef") != "" {
		t.Errorf("got ID %q, want 16 lower-case hexadecimal digits", a.ID())
	}
	if strings.Contains("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", a.ID()) {
		t.Errorf("ID %s is part of the raw key", a.ID())
	}
}

func TestHashEqual(t *testing.T) {
	k := newKey(t, 0)
	sum := k.Hash("code:abc", "123456")
	if len(sum) != 32 {
		t.Errorf("got %d-byte hash, want 32", len(sum))
	}
	if !bytes.Equal(sum, k.Hash("code:abc", "123456")) {
		t.Error("Hash is not deterministic")
	}
	if !k.Equal(sum, "code:abc", "123456") {
		t.Error("Equal(right value): got false, want true")
	}
	tests := []struct {
		name    string
		key     *secret.Key
		sum     []byte
		context string
		value   string
	}{
		{"wrong value", k, sum, "code:abc", "123457"},
		{"wrong context", k, sum, "code:abd", "123456"},
		{"shifted separator", k, sum, "code:abc1", "23456"},
		{"other key", newKey(t, 1), sum, "code:abc", "123456"},
		{"empty value", k, sum, "code:abc", ""},
		{"nil sum", k, nil, "code:abc", "123456"},
		{"truncated sum", k, sum[:16], "code:abc", "123456"},
		{"plain value as sum", k, []byte("123456"), "code:abc", "123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.key.Equal(tt.sum, tt.context, tt.value) {
				t.Errorf("got true, want false")
			}
		})
	}
	if bytes.Equal(k.Hash("ab", "c"), k.Hash("a", "bc")) {
		t.Error(`Hash("ab","c") equals Hash("a","bc"): context and value run together`)
	}
}

func TestCreateLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpgate.key")
	created, err := secret.Create(path, bytes.NewReader(bytes.Repeat([]byte{0xab}, 32)))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("got mode %v, want 0600", got)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("ab", 32) + "\n"; string(content) != want {
		t.Errorf("got file %q, want %q", content, want)
	}

	loaded, err := secret.Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if loaded.ID() != created.ID() {
		t.Errorf("got ID %s after Load, want %s", loaded.ID(), created.ID())
	}
	sealed, err := created.Seal([]byte("secret"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	got, err := loaded.Open(sealed, "ctx")
	if err != nil || string(got) != "secret" {
		t.Errorf("Open with the loaded key: got (%q, %v), want (\"secret\", nil)", got, err)
	}
	direct, err := secret.New(bytes.Repeat([]byte{0xab}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if direct.ID() != created.ID() {
		t.Errorf("got ID %s from New on the same bytes, want %s", direct.ID(), created.ID())
	}
}

func TestCreateRandom(t *testing.T) {
	dir := t.TempDir()
	a, err := secret.Create(filepath.Join(dir, "a.key"), nil)
	if err != nil {
		t.Fatalf("Create(nil rand): %v", err)
	}
	b, err := secret.Create(filepath.Join(dir, "b.key"), nil)
	if err != nil {
		t.Fatalf("Create(nil rand): %v", err)
	}
	if a.ID() == b.ID() {
		t.Errorf("two random keys share ID %s", a.ID())
	}
}

func TestCreateRefusesExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpgate.key")
	first, err := secret.Create(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secret.Create(path, nil); !errors.Is(err, os.ErrExist) {
		t.Errorf("second Create: got %v, want an error wrapping os.ErrExist", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("second Create changed the file: got %q, want %q", after, before)
	}
	loaded, err := secret.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ID() != first.ID() {
		t.Errorf("got ID %s, want the first key's %s", loaded.ID(), first.ID())
	}
}

func TestCreateRandFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpgate.key")
	if _, err := secret.Create(path, bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("short random source: got nil error, want one")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a failed Create: got stat error %v, want the file not to exist", err)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := secret.Load(filepath.Join(t.TempDir(), "none.key"))
	if !errors.Is(err, secret.ErrNoKey) {
		t.Errorf("got %v, want an error wrapping ErrNoKey", err)
	}
}

func TestLoadForms(t *testing.T) {
	hex := strings.Repeat("0f", 32)
	want := newKeyFrom(t, bytes.Repeat([]byte{0x0f}, 32)).ID()
	tests := []struct {
		name, content string
		ok            bool
	}{
		{"with newline", hex + "\n", true},
		{"without newline", hex, true},
		{"crlf", hex + "\r\n", true},
		{"upper case", strings.ToUpper(hex) + "\n", true},
		{"empty", "", false},
		{"newline only", "\n", false},
		{"31 bytes", hex[:62] + "\n", false},
		{"33 bytes", hex + "0f\n", false},
		{"odd length", hex[:63] + "\n", false},
		{"not hex", strings.Repeat("zz", 32) + "\n", false},
		{"inner space", hex[:32] + " " + hex[32:] + "\n", false},
		{"raw bytes", string(bytes.Repeat([]byte{0x0f}, 32)), false},
		{"two keys", hex + "\n" + hex + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "otpgate.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := secret.Load(path)
			if !tt.ok {
				if err == nil {
					t.Fatalf("got a key with ID %s, want an error", k.ID())
				}
				if errors.Is(err, secret.ErrNoKey) {
					t.Errorf("got %v, want an error other than ErrNoKey for a file that exists", err)
				}
				if strings.Contains(err.Error(), "0f0f") {
					t.Errorf("error %q quotes the key file", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want a key", err)
			}
			if k.ID() != want {
				t.Errorf("got ID %s, want %s", k.ID(), want)
			}
		})
	}
}

func newKeyFrom(t *testing.T, b []byte) *secret.Key {
	t.Helper()
	k, err := secret.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSubkey: two nodes with one key file derive the same subkey for a
// label, another label or key gives another, and the labels the key
// itself uses are refused, so a subkey never is the sealing key.
func TestSubkey(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, 32)
	a, _ := secret.New(raw)
	b, _ := secret.New(bytes.Clone(raw))
	other, _ := secret.New(bytes.Repeat([]byte{8}, 32))
	if !bytes.Equal(a.Subkey("otpgate web form v1"), b.Subkey("otpgate web form v1")) {
		t.Error("one key file, two subkeys")
	}
	if bytes.Equal(a.Subkey("otpgate web form v1"), a.Subkey("otpgate web form v2")) ||
		bytes.Equal(a.Subkey("otpgate web form v1"), other.Subkey("otpgate web form v1")) {
		t.Error("another label or key, the same subkey")
	}
	for _, label := range []string{"otpgate seal v1", "otpgate hash v1", "otpgate key id v1"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Subkey(%q) did not refuse a label the key uses", label)
				}
			}()
			a.Subkey(label)
		}()
	}
}
