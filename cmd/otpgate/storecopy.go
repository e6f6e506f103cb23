package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/otpgate/otpgate/cluster"
	"github.com/otpgate/otpgate/store"
)

const storeCopyUsage = "otpgate store copy --from FILE.db --to etcd, or --from etcd --to FILE.db (etcd as store.etcd in --config says)"

// cmdStore is "otpgate store copy": a single node's store moved into a
// cluster's etcd, or out of it into a file a single node runs from.
func cmdStore(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "copy" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
			return errHelp{"Usage:\n  " + storeCopyUsage + " [--force]\n"}
		}
		return usagef("say what to do with the store: %s", storeCopyUsage)
	}
	fs := newFlags("store copy")
	configPath := fs.String("config", "", "configuration `FILE` whose store.etcd names the cluster")
	from := fs.String("from", "", "what to copy: a store `FILE`, or etcd")
	to := fs.String("to", "", "where to: etcd, or a store `FILE`")
	force := fs.Bool("force", false, "replace a store that is there already")
	if _, err := parse(fs, args[1:], 0); err != nil {
		return err
	}
	toEtcd := *to == "etcd" && *from != "" && *from != "etcd"
	if !toEtcd && !(*from == "etcd" && *to != "" && *to != "etcd") {
		return usagef("store copy needs --from and --to, one of them etcd: %s", storeCopyUsage)
	}
	s, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if s.etcd == nil {
		return usagef("store copy: %s sets no store.etcd; give the configuration of the cluster's nodes (store.backend: etcd), for example: otpgate store copy --from %s --to %s --config /etc/otpgate/otpgate.yaml",
			orDefault(*configPath, "the embedded default"), *from, *to)
	}
	// The store on etcd is opened with a file of its own for the audit
	// log that a store keeps beside it: this node's, if it runs here, is
	// not touched.
	tmp, err := os.MkdirTemp("", "otpgate-copy")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if toEtcd {
		return copyToEtcd(s, *from, filepath.Join(tmp, "audit.db"), *force, stdout)
	}
	return copyFromEtcd(s, *to, filepath.Join(tmp, "audit.db"), *force, stdout)
}

// openFile opens a store file for a copy, refusing one a server uses.
func openFile(path string) (*store.DB, error) {
	db, err := store.Open(path, store.Options{Timeout: time.Second})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%s is in use by a running otpgate (or another command); stop it first, so that nothing it writes after the copy is lost", path)
	}
	return db, err
}

func copyToEtcd(s *settings, from, local string, force bool, stdout io.Writer) error {
	if _, err := os.Stat(from); err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	src, err := openFile(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := store.Open(local, store.Options{Etcd: s.etcd})
	if err != nil {
		return err
	}
	defer dst.Close()
	if force {
		cli, prefix := dst.Shared()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		nodes, err := cluster.Alive(ctx, cli, prefix)
		cancel()
		if err != nil {
			return err
		}
		if len(nodes) > 0 {
			names := make([]string, len(nodes))
			for i, n := range nodes {
				names[i] = n.Name
			}
			return fmt.Errorf("store copy: nodes %s run on %s; stop otpgate on every node before replacing the cluster's store", strings.Join(names, ", "), dst.Where())
		}
	}
	n, err := src.CopyToEtcd(dst, force)
	if errors.Is(err, store.ErrNotEmpty) {
		return fmt.Errorf("%w; nothing was copied. To replace it, stop every node and add --force", err)
	}
	if err != nil {
		return err
	}
	var keyID string
	src.View(func(tx *store.Tx) error { keyID = string(tx.Meta("key_id")); return nil })
	fmt.Fprintf(stdout, "copied %d user(s) (%d keys) from %s to %s; the audit log stays in %s.\n", n.Users, n.Keys, from, dst.Where(), from)
	if keyID != "" {
		fmt.Fprintf(stdout, "Every node needs the key file (store.key_file) this store was sealed with: key %s.\n", keyID)
	}
	return nil
}

func copyFromEtcd(s *settings, to, local string, force bool, stdout io.Writer) error {
	to, err := filepath.Abs(to)
	if err != nil {
		return err
	}
	if _, err := os.Stat(to); err == nil {
		db, err := openFile(to)
		if err != nil {
			return err
		}
		n, err := db.Stored()
		db.Close()
		if err != nil {
			return err
		}
		if n > 0 && !force {
			return fmt.Errorf("store copy: %s holds a store already (%d keys); nothing was copied. To replace it, add --force", to, n)
		}
	}
	src, err := store.Open(local, store.Options{Etcd: s.etcd})
	if err != nil {
		return err
	}
	defer src.Close()
	size, err := src.Backup(to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied the store of %s to %s (%d bytes), as etcd held it at one moment; a single node runs from it with store.backend: bbolt and the cluster's key file.\n", src.Where(), to, size)
	return nil
}
