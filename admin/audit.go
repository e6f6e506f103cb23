package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpgate/otpgate/store"
)

func (s *Service) audit(q AuditQuery) (string, error) {
	limit := q.Limit
	if limit == 0 {
		limit = 50
	}
	user := store.NormalizeName(q.User)
	var since time.Time
	if q.Since > 0 {
		since = s.now().Add(-q.Since)
	}
	// Show every decision made before the command, even those still queued.
	if err := s.DB.Flush(); err != nil {
		return "", err
	}
	var entries []store.Entry
	err := s.DB.View(func(tx *store.Tx) error {
		var err error
		entries, err = tx.AuditLog(limit, func(e store.Entry) bool {
			return (user == "" || e.User == user) && !e.Time.Before(since)
		})
		return err
	})
	if err != nil {
		return "", err
	}
	// In a cluster, the other nodes' entries of the last
	// audit.cluster_keep, from etcd, merged by time.
	keep := func(e store.Entry) bool { return (user == "" || e.User == user) && !e.Time.Before(since) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	others, oerr := s.DB.OthersAudit(ctx, since, limit, keep)
	cancel()
	if len(others) > 0 {
		entries = append(entries, others...)
		slices.SortStableFunc(entries, func(a, b store.Entry) int { return b.Time.Compare(a.Time) })
		if limit > 0 && len(entries) > limit {
			entries = entries[:limit]
		}
	}
	var b strings.Builder
	// Oldest first, like a log.
	if q.JSON {
		enc := json.NewEncoder(&b)
		for i := len(entries) - 1; i >= 0; i-- {
			if err := enc.Encode(entries[i]); err != nil {
				return "", err
			}
		}
		// JSON leaves DEL as it is, which Do would escape as \x7f, not
		// JSON: escape it the JSON way first.
		return strings.ReplaceAll(b.String(), "\x7f", `\u007f`), nil
	}
	// Every field is escaped: a User-Name is what a stranger sent.
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tUSER\tCLIENT\tIP\tDECISION\tREASON\tMETHOD/ACT")
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		last := orText(e.Method, "-")
		if e.Admin != nil {
			last = actText(*e.Admin)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339),
			Printable(orText(e.User, "-")), Printable(orText(e.Client, "-")), Printable(orText(e.IP, "-")),
			Printable(e.Decision), Printable(e.Reason), Printable(last))
	}
	w.Flush()
	if oerr != nil {
		fmt.Fprintf(&b, "(this node's entries only: %v)\n", oerr)
	}
	return b.String(), nil
}

// actText is an administrator's command as "user set phone,method by uid
// 1000 (alice) via admin socket", and why it failed.
func actText(a store.AdminAct) string {
	t := a.Op
	if len(a.Fields) > 0 {
		t += " " + strings.Join(a.Fields, ",")
	}
	if a.File != "" {
		t += " " + a.File
	}
	if a.By != "" {
		t += " by " + a.By
	}
	t += " via " + a.Via
	if a.Error != "" {
		t += ": " + a.Error
	}
	return t
}

// backup writes a consistent copy of the store to path while it serves.
func (s *Service) backup(path string) (string, error) {
	if path == "" || !filepath.IsAbs(path) {
		return "", usagef("backup needs a file name, for example: otpgate backup /var/backups/otpgate.db")
	}
	if err := s.DB.Flush(); err != nil {
		return "", err
	}
	n, err := s.DB.Backup(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("backed up the store to %s (%d bytes); back up the key file (store.key_file) with it: without it the TOTP secrets cannot be read\n", path, n), nil
}
