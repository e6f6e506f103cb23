package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pprofEnv names the variable that, in a binary built for profiling,
// holds the address to serve net/http/pprof on.
const pprofEnv = "OTPGATE_BENCH_PPROF"

// pprofFile is added to otpgate's main package, at build time only and
// only for -cpuprofile, through go build -overlay: otpgate's source stays
// as it is.
const pprofFile = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("` + pprofEnv + `"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

// buildOtpgate builds ./cmd/otpgate of the module the bench runs in into
// dir, with the pprof listener when profiling.
func buildOtpgate(dir string, profiling bool) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find the module (run from the repository): %w", err)
	}
	return buildOtpgateAt(strings.TrimSpace(string(out)), dir, profiling)
}

// buildOtpgateAt builds ./cmd/otpgate of the checkout at root into dir.
func buildOtpgateAt(root, dir string, profiling bool) (string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "otpgate")); err != nil {
		return "", fmt.Errorf("%s is not a checkout of otpgate: %w", root, err)
	}
	bin := filepath.Join(dir, "otpgate")
	args := []string{"build", "-o", bin}
	if profiling {
		src := filepath.Join(dir, "pprof.go")
		if err := os.WriteFile(src, []byte(pprofFile), 0o600); err != nil {
			return "", err
		}
		overlay, err := json.Marshal(map[string]map[string]string{
			"Replace": {filepath.Join(root, "cmd", "otpgate", "zz_bench_pprof.go"): src},
		})
		if err != nil {
			return "", err
		}
		ov := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ov, overlay, 0o600); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ov)
	}
	cmd := exec.Command("go", append(args, "./cmd/otpgate")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build otpgate: %v\n%s", err, out)
	}
	return bin, nil
}

// fetch saves what url answers (a profile) into file.
func fetch(url, file string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
