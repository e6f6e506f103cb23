package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig: any file is either a configuration or an error that
// names what is wrong; never a panic, and a configuration that loads has
// the defaults filled in.
func FuzzLoadConfig(f *testing.F) {
	example, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add(defaultsYAML)
	for _, name := range []string{"bad-keys.yml", "bad-values.yml", "bad-duration.yml", "bad-delivery.yml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("tenants: [{name: a, parent: a}]\nclients: [{name: c, address: 127.0.0.1, secret: s, tenant: a}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 || strings.Contains(string(data), "_file") {
			return // no reading of arbitrary files named by the fuzzer
		}
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := loadConfig(path)
		if err != nil {
			if !strings.Contains(err.Error(), "config") {
				t.Fatalf("error %q does not say it is about the config", err)
			}
			return
		}
		if len(s.listen) == 0 || len(s.tenants) == 0 || len(s.clients) == 0 || s.storePath == "" {
			t.Fatalf("a configuration loaded without its defaults: %+v", s)
		}
		for _, tn := range s.tenants {
			if tn.CodeDigits < 4 || tn.CodeDigits > 8 || tn.MaxAttempts < 1 || tn.CodeTTL <= 0 {
				t.Fatalf("tenant %s loaded out of range: %+v", tn.Name, tn)
			}
		}
	})
}
