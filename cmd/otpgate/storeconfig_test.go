package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigStore(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "etcd.pw"), []byte("s3cret\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "empty.pw"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "notpem"), []byte("x"), 0o600)
	for _, tc := range []struct{ store, cluster, want string }{
		{`{backend: bbolt}`, ``, ""},
		{`{backend: etcd, etcd: {endpoints: ["http://127.0.0.1:2379"]}}`, `{node_name: a}`, ""},
		{`{backend: etcd, etcd: {endpoints: ["http://127.0.0.1:2379"], username: otpgate, password_file: etcd.pw}}`, ``, ""},
		{`{backend: sqlite}`, ``, `store.backend: "sqlite" is not one of bbolt, etcd`},
		{`{etcd: {endpoints: ["http://127.0.0.1:2379"]}}`, ``, "store.etcd.endpoints: is set, but store.backend is bbolt"},
		{`{backend: etcd}`, ``, "store.etcd.endpoints: is empty"},
		{`{backend: etcd, etcd: {endpoints: ["127.0.0.1:2379"]}}`, ``, `store.etcd.endpoints[0]: "127.0.0.1:2379" is not a client URL`},
		{`{backend: etcd, etcd: {endpoints: ["http://127.0.0.1"]}}`, ``, `store.etcd.endpoints[0]: "http://127.0.0.1" has no port`},
		{`{backend: etcd, etcd: {endpoints: ["http://127.0.0.1:2379"], prefix: otpgate}}`, ``, `store.etcd.prefix: "otpgate" must start and end with /`},
		{`{backend: etcd, etcd: {endpoints: ["http://127.0.0.1:2379"], dial_timeout: 2h}}`, ``, "store.etcd.dial_timeout: 2h0m0s is out of range"},
		{`{backend: etcd, etcd: {endpoints: ["https://127.0.0.1:2379"], ca_file: notpem}}`, ``, "store.etcd.ca_file: " + filepath.Join(dir, "notpem") + " holds no PEM certificate"},
		{`{backend: etcd, etcd: {endpoints: ["https://127.0.0.1:2379"], cert_file: c.pem}}`, ``, "store.etcd.cert_file: cert_file and key_file go together"},
		{`{backend: etcd, etcd: {endpoints: ["http://127.0.0.1:2379"], username: otpgate}}`, ``, `store.etcd.password_file: is empty; etcd's user "otpgate" needs a password`},
		{`{backend: etcd, etcd: {endpoints: ["http://127.0.0.1:2379"], username: otpgate, password_file: empty.pw}}`, ``, "store.etcd.password_file: " + filepath.Join(dir, "empty.pw") + " is empty"},
		{`{backend: etcd, etcd: {endpoints: ["http://127.0.0.1:2379"], password_file: etcd.pw}}`, ``, "store.etcd.password_file: is set without store.etcd.username"},
	} {
		path := filepath.Join(dir, "c.yaml")
		cfg := "radius: {listen: [\"127.0.0.1:1999\"]}\nclients: [{name: gw, address: 127.0.0.1, secret: s, tenant: t}]\ntenants: [{name: t}]\nstore: " + tc.store + "\n"
		if tc.cluster != "" {
			cfg += "cluster: " + tc.cluster + "\n"
		}
		os.WriteFile(path, []byte(cfg), 0o600)
		s, err := loadConfig(path)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.store, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.store, err, tc.want)
		case tc.want == "" && strings.Contains(tc.store, "etcd"):
			host, _ := os.Hostname()
			if want := map[string]string{"": host + ":1999", "{node_name: a}": "a"}[tc.cluster]; s.nodeName != want {
				t.Errorf("%s: got node name %q, want %q", tc.store, s.nodeName, want)
			}
			if s.etcd == nil || s.etcd.Prefix != "/otpgate/" {
				t.Errorf("%s: got etcd %+v, want the default prefix", tc.store, s.etcd)
			}
			if strings.Contains(tc.store, "password_file") && s.etcd.Password != "s3cret" {
				t.Errorf("%s: got password %q, want the file's first line", tc.store, s.etcd.Password)
			}
		case tc.want == "" && s.etcd != nil:
			t.Errorf("%s: got etcd %+v, want bbolt", tc.store, s.etcd)
		}
	}
}
