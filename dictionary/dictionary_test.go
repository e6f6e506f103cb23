package dictionary

import (
	"bytes"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		key    Key
		want   []byte
		errHas string // empty: no error
	}{
		{"Filter-Id=admins", Key{0, 11}, []byte("admins"), ""},
		{"filter-id=admins", Key{0, 11}, []byte("admins"), ""},
		{"Session-Timeout=3600", Key{0, 27}, []byte{0, 0, 0x0e, 0x10}, ""},
		{"Service-Type=Framed-User", Key{0, 6}, []byte{0, 0, 0, 2}, ""},
		{"Service-Type=framed-user", Key{0, 6}, []byte{0, 0, 0, 2}, ""},
		{"Framed-IP-Address=192.0.2.7", Key{0, 8}, []byte{192, 0, 2, 7}, ""},
		{"Framed-IPv6-Prefix=2001:db8::/48", Key{0, 97}, []byte{0, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 0}, ""},
		{"Class=OU=admins;", Key{0, 25}, []byte("OU=admins;"), ""},
		{"Class=0x0102ff", Key{0, 25}, []byte{1, 2, 0xff}, ""},
		{"Tunnel-Type=VLAN", Key{0, 64}, []byte{0, 0, 0, 13}, ""},
		{"Tunnel-Private-Group-Id=10", Key{0, 81}, []byte("10"), ""},
		{"Fortinet-Group-Name=vpn-admins", Key{12356, 1}, []byte("vpn-admins"), ""},
		{"12356:1=vpn-admins", Key{12356, 1}, []byte("vpn-admins"), ""},
		{"99999:7=0x0a0b", Key{99999, 7}, []byte{0x0a, 0x0b}, ""},
		{"Cisco-AVPair=shell:priv-lvl=15", Key{9, 1}, []byte("shell:priv-lvl=15"), ""},
		{"PaloAlto-User-Group=admins", Key{25461, 5}, []byte("admins"), ""},

		{"Session-Timeout=soon", Key{}, nil, `"soon" is not a number`},
		{"Session-Timeout=-1", Key{}, nil, "is not a number"},
		{"Session-Timeout=4294967296", Key{}, nil, "is not a number"},
		{"Service-Type=Root", Key{}, nil, "Framed-User"},
		{"Framed-IP-Address=2001:db8::1", Key{}, nil, "is not an IPv4 address"},
		{"Framed-IP-Address=192.0.2.300", Key{}, nil, "is not an IPv4 address"},
		{"Framed-IPv6-Prefix=2001:db8::1/48", Key{}, nil, "is not an IPv6 network"},
		{"Class=0xabc", Key{}, nil, "hex digits"},
		{"Filter-Id=", Key{}, nil, "is empty"},
		{"Filter-Id", Key{}, nil, "is not Name=value"},
		{"=admins", Key{}, nil, "is not Name=value"},
		{"Filter-Idd=admins", Key{}, nil, `unknown attribute "Filter-Idd"`},
		{"0:1=x", Key{}, nil, "is not a vendor attribute"},
		{"12356:256=x", Key{}, nil, "is not a vendor attribute"},
		{"Filter-Id=" + strings.Repeat("a", 254), Key{}, nil, "want at most 253"},
		{"Fortinet-Group-Name=" + strings.Repeat("a", 248), Key{}, nil, "want at most 247"},
		{"Filter-Id=\xff", Key{}, nil, "not UTF-8"},
		{"Session-Timeout={user}", Key{}, nil, "only go in text values"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, err := Parse(tc.in)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("got error %v, want one saying %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := r.Attribute(Vars{})
			if a.Key != tc.key || !bytes.Equal(a.Value, tc.want) {
				t.Errorf("got %v %x, want %v %x", a.Key, a.Value, tc.key, tc.want)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	r, err := Parse("Filter-Id={tenant}-{method}-{user}")
	if err != nil {
		t.Fatal(err)
	}
	a := r.Attribute(Vars{User: "alice", Tenant: "acme", Method: "totp"})
	if got, want := string(a.Value), "acme-totp-alice"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A name long enough to overflow the attribute is cut, not sent whole.
	r, _ = Parse("Fortinet-Group-Name=g-{user}")
	a = r.Attribute(Vars{User: strings.Repeat("é", 200)})
	if len(a.Value) > 247 || !strings.HasPrefix(string(a.Value), "g-éé") {
		t.Errorf("got %d bytes %q…, want at most 247", len(a.Value), a.Value[:6])
	}
	if got := r.String(); got != "Fortinet-Group-Name=g-{user}" {
		t.Errorf("String: got %q", got)
	}
}

func TestDictionary(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range attributes {
		if seen[strings.ToLower(d.Name)] {
			t.Errorf("%s is in the dictionary twice", d.Name)
		}
		seen[strings.ToLower(d.Name)] = true
		if d.Type == 0 {
			t.Errorf("%s has type 0", d.Name)
		}
	}
	for _, name := range []string{"Fortinet-Group-Name", "Cisco-AVPair", "PaloAlto-User-Group", "Filter-Id", "Class",
		"Session-Timeout", "Idle-Timeout", "Framed-IP-Address", "Framed-Pool", "MS-Machine-Name", "Juniper-Local-User-Name",
		"Citrix-User-Groups", "Aruba-User-Role"} {
		if _, err := Lookup(name); err != nil {
			t.Errorf("Lookup(%s): %v", name, err)
		}
	}
	if got := Name(Key{12356, 1}); got != "Fortinet-Group-Name" {
		t.Errorf("Name: got %s", got)
	}
	if got := Name(Key{99999, 7}); got != "99999:7" {
		t.Errorf("Name: got %s", got)
	}
}

// FuzzParse: whatever an administrator types, Parse does not panic, and
// what it accepts encodes, templates filled with anything, within an
// attribute.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"Filter-Id=admins", "Session-Timeout=0x10", "Framed-IPv6-Prefix=2001:db8::/0",
		"12356:1=g-{user}", "Tunnel-Type=VLAN", "Class=0x", "Service-Type=framed-user"} {
		f.Add(s, "alice")
	}
	f.Fuzz(func(t *testing.T, s, user string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		a := r.Attribute(Vars{User: user, Tenant: user, Method: user})
		if len(a.Value) > r.max() || (a.Vendor == 0 && a.Type == 0) {
			t.Fatalf("Parse(%q): %d bytes for %v", s, len(a.Value), a.Key)
		}
	})
}
