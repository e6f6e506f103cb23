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
func (s *Service) importUsers(data []byte) (string, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return "", usagef("import: the file has no header line; it starts with: %s", strings.Join(csvHeader, ","))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(csvHeader, h) {
			return "", usagef("import: line 1: unknown column %q; the columns are %s", h, strings.Join(csvHeader, ","))
		}
		col[h] = i
	}
	if _, ok := col["name"]; !ok {
		return "", usagef("import: line 1: no name column")
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
				return strings.TrimSpace(rec[i])
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
		return "", usageError{"import: nothing imported:\n" + err.Error()}
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
		return "", err
	}
	return fmt.Sprintf("imported %d user(s)\n", len(users)), nil
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
			return w.Write([]string{u.Name, u.Tenant, u.Phone, u.Email, u.Method, u.BackupMethod, secret, strings.Join(ips, " ")})
		})
	})
	w.Flush()
	if err != nil {
		return "", err
	}
	return b.String(), w.Error()
}
