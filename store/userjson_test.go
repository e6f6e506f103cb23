package store

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullUser has every field of a user's record set.
func fullUser() User {
	at := time.Date(2026, 11, 30, 9, 15, 42, 123456789, time.UTC)
	return User{
		Name: "anna", Tenant: "acme", TwoFactor: "on", Method: "totp", BackupMethod: "sms",
		Phone: "+31612345678", Email: "anna@example.com",
		HomeIPs:      []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/64")},
		PasswordHash: "$2a$10$abcdefghijklmnopqrstuv",
		TOTP:         &TOTP{Sealed: []byte{1, 2, 3, 250}, LastStep: 59000000, Drift: -1, Created: at},
		PendingTOTP:  &TOTP{Sealed: []byte("pending"), LastStep: 0},
		Recovery:     [][]byte{[]byte("h1"), {}, []byte("h3")},
		Failures:     []time.Time{at, at.Add(time.Second)},
		LockedUntil:  at.Add(time.Hour).In(time.FixedZone("CET", 3600)),
		Remembered:   []RememberedIP{{IP: netip.MustParseAddr("198.51.100.9"), Until: at}, {IP: netip.MustParseAddr("2001:db8::1"), Until: at}},
		Reply:        []string{"Filter-Id=admins", "Class=vpn"},
		Invite:       &Invite{Hash: []byte("hash"), Created: at, Expires: at.Add(24 * time.Hour), Via: "sms", Failures: 2},
		Created:      at,
		Updated:      at.Add(time.Minute),
	}
}

// decodeBoth decodes b with readUserJSON and with encoding/json, and fails
// the test when readUserJSON read it and the two differ.
func decodeBoth(t *testing.T, b []byte) (fast bool) {
	t.Helper()
	got, ok := readUserJSON(b)
	if !ok {
		return false
	}
	var want User
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("readUserJSON read %q, which encoding/json refuses: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nreadUserJSON %+v\nencoding/json %+v", b, got, want)
	}
	return true
}

func TestReadUserJSONReadsWhatMarshalWrites(t *testing.T) {
	minimal := User{Name: "bob", Tenant: "acme"}
	name := fullUser()
	name.Name, name.Email = "zoë", "zoë@example.com" // not ASCII: read too
	for _, u := range []User{fullUser(), minimal, name} {
		b, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		if !decodeBoth(t, b) {
			t.Errorf("readUserJSON left %s to encoding/json", b)
		}
		got, err := unmarshalUser(u.Name, b)
		if err != nil || !reflect.DeepEqual(got, mustUnmarshal(t, b)) {
			t.Errorf("unmarshalUser(%s) = %+v, %v", b, got, err)
		}
	}
}

func mustUnmarshal(t *testing.T, b []byte) User {
	t.Helper()
	var u User
	if err := json.Unmarshal(b, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

// What it does not read in full goes to encoding/json: unmarshalUser
// decodes it all the same.
func TestReadUserJSONLeavesTheRestToEncodingJSON(t *testing.T) {
	full, err := json.Marshal(fullUser())
	if err != nil {
		t.Fatal(err)
	}
	withEscape := fullUser()
	withEscape.Reply = []string{`Reply-Message="<hi>"`} // Marshal escapes both
	escaped, _ := json.Marshal(withEscape)
	for name, rec := range map[string]string{
		"escape":          string(escaped),
		"white space":     strings.Replace(string(full), `"tenant":`, `"tenant": `, 1),
		"other case":      strings.Replace(string(full), `"tenant":`, `"Tenant":`, 1),
		"unknown key":     strings.Replace(string(full), `"tenant":`, `"colour":"red","tenant":`, 1),
		"repeated key":    strings.Replace(string(full), `"tenant":"acme"`, `"tenant":"acme","tenant":"other"`, 1),
		"null":            strings.Replace(string(full), `"reply":["Filter-Id=admins","Class=vpn"]`, `"reply":null`, 1),
		"null totp":       strings.Replace(string(full), `"pending_totp":{"sealed":"cGVuZGluZw==","last_step":0}`, `"pending_totp":null`, 1),
		"exponent":        strings.Replace(string(full), `"last_step":59000000`, `"last_step":59e6`, 1),
		"leading zero":    strings.Replace(string(full), `"drift":-1`, `"drift":-01`, 1),
		"trailing":        string(full) + " ",
		"not utf-8":       strings.Replace(string(full), `"anna"`, "\"ann\xffa\"", 1),
		"unknown in totp": strings.Replace(string(full), `"last_step":59000000`, `"last_step":59000000,"x":1`, 1),
	} {
		b := []byte(rec)
		if rec == string(full) {
			t.Fatalf("%s: the record was not changed", name)
		}
		if decodeBoth(t, b) {
			t.Errorf("%s: readUserJSON read %s", name, b)
		}
		var want User
		wantErr := json.Unmarshal(b, &want)
		got, err := unmarshalUser("anna", b)
		if (err != nil) != (wantErr != nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: unmarshalUser = %+v, %v; encoding/json %+v, %v", name, got, err, want, wantErr)
		}
	}
}

// FuzzReadUserJSON holds readUserJSON to encoding/json: whatever it reads,
// encoding/json reads too, to the same user.
func FuzzReadUserJSON(f *testing.F) {
	full, _ := json.Marshal(fullUser())
	minimal, _ := json.Marshal(User{Name: "bob"})
	f.Add(full)
	f.Add(minimal)
	f.Add([]byte(`{"name":"a","totp":{"sealed":"AQID","last_step":-0}}`))
	f.Add([]byte(`{"home_ips":[],"reply":[""],"failures":["2026-01-02T03:04:05Z"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeBoth(t, b)
	})
}
