package admin

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// csvHeader is the columns of "user import" and "user export", in order.
var csvHeader = []string{"name", "tenant", "phone", "email", "method", "backup_method", "totp_secret", "home_ips"}

// importUsers adds the users of a CSV file with csvHeader's columns (any
// order, by the header; home IPs separated by spaces or semicolons). It is
// all or nothing: a bad row names its line and nothing is imported.
func (s *Service) importUsers(data []byte) (string, []store.User, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return "", nil, usagef("import: the file has no header line; it starts with: %s", strings.Join(csvHeader, ","))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(csvHeader, h) {
			return "", nil, usagef("import: line 1: unknown column %q; the columns are %s", h, strings.Join(csvHeader, ","))
		}
		col[h] = i
	}
	if _, ok := col["name"]; !ok {
		return "", nil, usagef("import: line 1: no name column")
	}
	now := s.now()
	var users []store.User
	var problems []error
	seen := map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			problems = append(problems, fmt.Errorf("line %d: %v", line, err))
			break
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return cellValue(strings.TrimSpace(rec[i]))
			}
			return ""
		}
		u, err := s.userFromRow(get, now)
		if err != nil {
			problems = append(problems, fmt.Errorf("line %d: %v", line, err))
			continue
		}
		if first, dup := seen[u.Name]; dup {
			problems = append(problems, fmt.Errorf("line %d: %s is also on line %d", line, u.Name, first))
			continue
		}
		seen[u.Name] = line
		users = append(users, u)
		if len(problems) >= 20 {
			break
		}
	}
	if err := errors.Join(problems...); err != nil {
		return "", nil, usageError{"import: nothing imported:\n" + err.Error()}
	}
	err = s.DB.Update(func(tx *store.Tx) error {
		for _, u := range users {
			if _, err := tx.User(u.Name); err == nil {
				return usagef("import: line %d: user %s exists; nothing imported (delete or rename it first)", seen[u.Name], u.Name)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("imported %d user(s)\n", len(users)), users, nil
}

// userFromRow checks one row as "user add" would check its flags.
func (s *Service) userFromRow(get func(string) string, now time.Time) (store.User, error) {
	name := get("name")
	if err := checkName(name); err != nil {
		return store.User{}, err
	}
	u := store.User{Name: store.NormalizeName(name), Created: now}
	tenant := get("tenant")
	if tenant == "" && len(s.Tenants) == 1 {
		tenant = s.Tenants[0].Name
	}
	ch := &UserChange{Tenant: &tenant}
	for field, dst := range map[string]**string{"phone": &ch.Phone, "email": &ch.Email, "method": &ch.Method, "backup_method": &ch.BackupMethod} {
		if v := get(field); v != "" {
			*dst = &v
		}
	}
	for _, ip := range strings.FieldsFunc(get("home_ips"), func(r rune) bool { return r == ' ' || r == ';' }) {
		ch.AddHomeIPs = append(ch.AddHomeIPs, ip)
	}
	if err := s.apply(&u, ch, now); err != nil {
		return u, err
	}
	if secret := get("totp_secret"); secret != "" {
		text, err := otp.NormalizeSecret(secret)
		if err != nil {
			return u, fmt.Errorf("totp_secret: %v", err)
		}
		sealed, err := policy.SealTOTP(s.Key, u.Name, text)
		if err != nil {
			return u, err
		}
		u.TOTP = &store.TOTP{Sealed: sealed, Created: now}
	}
	defaultMethod(&u)
	return u, nil
}

// exportUsers writes every user as CSV; TOTP secrets only when asked,
// since they let anyone make codes.
func (s *Service) exportUsers(withSecrets bool) (string, error) {
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write(csvHeader)
	err := s.DB.View(func(tx *store.Tx) error {
		return tx.Users(func(u store.User) error {
			secret := ""
			if withSecrets && u.TOTP != nil {
				plain, err := s.Key.Open(u.TOTP.Sealed, "totp:"+u.Name)
				if err != nil {
					return fmt.Errorf("open the TOTP secret of %s: %w", u.Name, err)
				}
				secret = string(plain)
			}
			ips := make([]string, len(u.HomeIPs))
			for i, p := range u.HomeIPs {
				ips[i] = prefixText(p)
			}
			rec := []string{u.Name, u.Tenant, u.Phone, u.Email, u.Method, u.BackupMethod, secret, strings.Join(ips, " ")}
			for i, f := range rec {
				rec[i] = cellText(f)
			}
			return w.Write(rec)
		})
	})
	w.Flush()
	if err != nil {
		return "", err
	}
	return b.String(), w.Error()
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
