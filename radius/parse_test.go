package radius

import (
	"reflect"
	"testing"

	"layeh.com/radius"
)

// FuzzParsePacket: parsePacket accepts and refuses what radius.Parse does,
// and gives the same packet, which shares no bytes with its input.
func FuzzParsePacket(f *testing.F) {
	f.Add([]byte{1, 7, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{1, 7, 0, 31, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1, 7, 'a', 'l', 'i', 'c', 'e', 24, 2, 33, 2})
	f.Add([]byte{1, 7, 0, 25, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1, 7, 'a', 'l', 'i', 'c', 'e'})
	f.Add([]byte{1, 7, 0, 23, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		secret := []byte("secret")
		want, wantErr := radius.Parse(b, secret)
		got, err := parsePacket(b, secret)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("parsePacket: got error %v, radius.Parse %v", err, wantErr)
		}
		if err != nil {
			if err.Error() != wantErr.Error() {
				t.Errorf("got error %q, want %q", err, wantErr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		for i := range b {
			b[i] ^= 0xff // the packet keeps nothing of its input
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the packet changed with its input")
		}
		for i, a := range got.Attributes {
			if len(a.Attribute) != cap(a.Attribute) {
				t.Fatalf("attribute %d: length %d, capacity %d: an append would run into the next", i, len(a.Attribute), cap(a.Attribute))
			}
		}
	})
}
