package admin

import (
	"encoding/json"
	"fmt"
	"path/filepath"
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
	var b strings.Builder
	// Oldest first, like a log.
	if q.JSON {
		enc := json.NewEncoder(&b)
		for i := len(entries) - 1; i >= 0; i-- {
			if err := enc.Encode(entries[i]); err != nil {
				return "", err
			}
		}
		return b.String(), nil
	}
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tUSER\tCLIENT\tIP\tDECISION\tREASON\tMETHOD")
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), orText(e.User, "-"),
			e.Client, orText(e.IP, "-"), e.Decision, e.Reason, orText(e.Method, "-"))
	}
	w.Flush()
	return b.String(), nil
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
