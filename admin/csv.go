package admin

import (
	"bytes"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// csvHeader is the columns of "user import" and "user export", in order.
var csvHeader = []string{"name", "tenant", "phone", "email", "method", "backup_method", "totp_secret", "home_ips", "2fa"}

// Import is how "user import" takes a file.
type Import struct {
	// Update changes users that exist already; without it a file naming
	// one is refused.
	Update bool
	// AllowShortSecret accepts TOTP secrets of 80 to 127 bits, for
	// migrating enrolments made elsewhere.
	AllowShortSecret bool
}

// importUsers adds the users of a CSV file with csvHeader's columns (any
// order, by the header; any but name may be left out; home IPs separated
// by spaces or semicolons), and with opt.Update changes those that exist:
// each column given replaces what the user has, except that an empty
// totp_secret or method keeps theirs. It is all or nothing: every bad line
// is named, in the file's own terms, and nothing is imported.
func (s *Service) importUsers(data []byte, opt Import) (string, []store.User, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return "", nil, usagef("import: the file has no header line; it starts with: %s", strings.Join(csvHeader, ","))
	}
	col := map[string]int{}
	var problems []error
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(csvHeader, h) {
			problems = append(problems, fmt.Errorf("line 1: unknown column %q; the columns are %s", clip(h), strings.Join(csvHeader, ",")))
			continue
		}
		if _, twice := col[h]; twice {
			problems = append(problems, fmt.Errorf("line 1: column %s is there twice", Printable(clip(h))))
		}
		col[h] = i
	}
	if _, ok := col["name"]; !ok {
		problems = append(problems, fmt.Errorf("line 1: no name column"))
	}
	if len(problems) > 0 {
		return "", nil, usageError{"import: nothing imported:\n" + errors.Join(problems...).Error()}
	}
	type row struct {
		line int
		get  func(string) (string, bool)
	}
	var rows []row
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			problems = append(problems, fmt.Errorf("line %d: %v", pe.StartLine, pe.Err))
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("line %d: %v", line, err))
			break
		}
		rows = append(rows, row{line, func(name string) (string, bool) {
			i, ok := col[name]
			if !ok {
				return "", false
			}
			if i < len(rec) {
				return cellValue(strings.TrimSpace(rec[i])), true
			}
			return "", true
		}})
	}
	now := s.now()
	var users []store.User
	var notes strings.Builder
	added, updated := 0, 0
	err = s.DB.Update(func(tx *store.Tx) error {
		seen := map[string]int{}
		for _, rw := range rows {
			name, _ := rw.get("name")
			if first, dup := seen[store.NormalizeName(name)]; dup && name != "" {
				problems = append(problems, fmt.Errorf("line %d: %s is also on line %d", rw.line, Printable(clip(store.NormalizeName(name))), first))
				continue
			}
			seen[store.NormalizeName(name)] = rw.line
			u, exists, note, err := s.userFromRow(tx, rw.get, now, opt)
			if err != nil {
				for _, e := range splitErrors(err) {
					problems = append(problems, fmt.Errorf("line %d: %v", rw.line, e))
				}
				continue
			}
			if exists {
				updated++
			} else {
				added++
			}
			users = append(users, u)
			for _, n := range strings.SplitAfter(note+s.notes(u), "\n") {
				if n != "" {
					fmt.Fprintf(&notes, "line %d: %s", rw.line, n)
				}
			}
		}
		if len(problems) > 0 {
			return usageError{"import: nothing imported:\n" + errors.Join(problems...).Error()}
		}
		for _, u := range users {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	out := fmt.Sprintf("imported %d user(s)", len(users))
	if opt.Update {
		out += fmt.Sprintf(": %d added, %d updated", added, updated)
	}
	return out + "\n" + notes.String(), users, nil
}

// splitErrors undoes errors.Join, so that each problem gets its line.
func splitErrors(err error) []string {
	return slices.DeleteFunc(strings.Split(err.Error(), "\n"), func(l string) bool { return l == "" })
}

// userFromRow checks one row as "user add" checks its flags, or, for a
// user that exists and opt.Update, as "user set" would, and returns the
// user as the row makes them.
func (s *Service) userFromRow(tx *store.Tx, get func(string) (string, bool), now time.Time, opt Import) (store.User, bool, string, error) {
	name, _ := get("name")
	if err := checkName(name); err != nil {
		return store.User{}, false, "", err
	}
	u, err := tx.User(name)
	exists := err == nil
	switch {
	case exists && !opt.Update:
		return u, true, "", failf("user %s exists; give --update to change existing users, or take the line out", u.Name)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return u, false, "", err
	case !exists:
		u = store.User{Name: store.NormalizeName(name), Created: now}
	}
	ch := &UserChange{}
	for field, dst := range map[string]**string{"tenant": &ch.Tenant, "phone": &ch.Phone, "email": &ch.Email, "method": &ch.Method, "backup_method": &ch.BackupMethod, "2fa": &ch.TwoFactor} {
		v, ok := get(field)
		switch {
		case !ok, v == "" && (field == "method" || field == "tenant"):
			// Left out: kept (an existing user), or the default (a new one).
		default:
			*dst = &v
		}
	}
	if ch.Tenant == nil && !exists {
		switch len(s.Tenants) {
		case 1:
			ch.Tenant = &s.Tenants[0].Name
		default:
			return u, false, "", usagef("tenant is empty; say which: one of %s", s.tenantNames())
		}
	}
	if ips, ok := get("home_ips"); ok {
		ch.ClearHomeIPs = exists
		ch.AddHomeIPs = strings.FieldsFunc(ips, func(r rune) bool { return r == ' ' || r == ';' })
	}
	var problems []error
	if secretText, _ := get("totp_secret"); secretText != "" {
		text, err := checkSecret("totp_secret", secretText, opt.AllowShortSecret, "user import --allow-short-secret")
		switch {
		case err != nil:
			problems = append(problems, err)
		case u.TOTP != nil && s.sameSecret(u, text):
			// The secret the user has: keep its replay guard and drift.
		default:
			sealed, err := policy.SealTOTP(s.Key, u.Name, text)
			if err != nil {
				return u, exists, "", err
			}
			u.TOTP = &store.TOTP{Sealed: sealed, Created: now}
		}
	}
	remembered := u.Remembered
	note, err := s.apply(&u, ch, now, !exists, columnLabel)
	if err != nil {
		problems = append(problems, err)
	}
	u.Remembered = remembered // home IPs replaced; IPs proved from stay
	return u, exists, note, errors.Join(problems...)
}

// sameSecret reports whether u's TOTP secret is text.
func (s *Service) sameSecret(u store.User, text string) bool {
	plain, err := s.Key.Open(u.TOTP.Sealed, "totp:"+u.Name)
	return err == nil && subtle.ConstantTimeCompare(plain, []byte(text)) == 1
}

// exportUsers writes every user as CSV; TOTP secrets only when asked,
// since they let anyone make codes.
func (s *Service) exportUsers(withSecrets bool) (string, error) {
	out := s.output()
	w := csv.NewWriter(out)
	w.Write(csvHeader)
	err := s.DB.View(func(tx *store.Tx) error {
		return tx.Users(func(u store.User) error {
			secret := ""
			if withSecrets && u.TOTP != nil {
				plain, err := s.Key.Open(u.TOTP.Sealed, "totp:"+u.Name)
				if err != nil {
					return fmt.Errorf("open the TOTP secret of %s: %w", Printable(u.Name), err)
				}
				secret = string(plain)
			}
			ips := make([]string, len(u.HomeIPs))
			for i, p := range u.HomeIPs {
				ips[i] = prefixText(p)
			}
			rec := []string{u.Name, u.Tenant, u.Phone, u.Email, u.Method, u.BackupMethod, secret, strings.Join(ips, " "), u.TwoFactor}
			for i, f := range rec {
				rec[i] = cellText(f)
			}
			if err := w.Write(rec); err != nil {
				return err
			}
			return out.err
		})
	})
	w.Flush()
	if err != nil {
		return "", err
	}
	return out.rest(), w.Error()
}

// cellText writes a value for a CSV cell that a spreadsheet will open:
// escaped as [Printable] writes it, and with an apostrophe before a value
// that a spreadsheet would take for a formula (one starting with =, +, -
// or @, after any apostrophes), so that it is shown as text and not
// computed. A phone number in E.164 form (+ and digits, as the store keeps
// them) is left as it is: a spreadsheet reads it as a number, and import
// takes it back unchanged. cellValue undoes the apostrophe.
func cellText(v string) string {
	v = Printable(v)
	if isE164(v) {
		return v
	}
	if rest := strings.TrimLeft(v, "'"); rest != "" && strings.ContainsRune("=+-@", rune(rest[0])) {
		return "'" + v
	}
	return v
}

// cellValue is the value of a cell that cellText wrote.
func cellValue(v string) string {
	if rest := strings.TrimLeft(v, "'"); rest != v && rest != "" && strings.ContainsRune("=+-@", rune(rest[0])) {
		return v[1:]
	}
	return v
}

// isE164 reports whether v is + and 1 to 15 digits.
func isE164(v string) bool {
	if len(v) < 2 || len(v) > 16 || v[0] != '+' {
		return false
	}
	return !strings.ContainsFunc(v[1:], func(r rune) bool { return r < '0' || r > '9' })
}
