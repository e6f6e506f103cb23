package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

// totpSecret is every bench user's authenticator-app secret. Each user's
// copy is sealed for that user, as otpgate user totp does.
const totpSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// The bench's users, by kind.
func officeName(i int) string { return fmt.Sprintf("office%d", i) }
func totpName(i int) string   { return fmt.Sprintf("t%07d", i) }
func codeName(i int) string   { return fmt.Sprintf("s%07d", i) }

// phoneOf is the mobile number of sent-code user i; userOfPhone undoes it.
func phoneOf(i int) string { return fmt.Sprintf("+3161%07d", i) }

func userOfPhone(to string) (int, bool) {
	if len(to) != 12 || to[:5] != "+3161" {
		return 0, false
	}
	i, err := strconv.Atoi(to[5:])
	return i, err == nil
}

// population is how many users of each kind a store holds.
type population struct {
	office int // office-network users, TOTP enrolled (office0…)
	totp   int // TOTP users (t0000000…)
	code   int // users who get codes by SMS (s0000000…)
	// tenants spreads the TOTP users over tenants t0…, user i in
	// tenantName(i % tenants); 0 puts everyone in acme.
	tenants int
}

func tenantName(i int) string { return fmt.Sprintf("t%d", i) }

// tenantOf is the tenant TOTP user i is in.
func (p population) tenantOf(i int) string {
	if p.tenants == 0 {
		return "acme"
	}
	return tenantName(i % p.tenants)
}

func (p population) total() int { return p.office + p.totp + p.code }

// fill makes a new store at dir/otpgate.db, and its key file, holding p's
// users, written straight through the store package before otpgate starts.
func fill(dir string, p population) error {
	dbPath, keyPath := filepath.Join(dir, "otpgate.db"), filepath.Join(dir, "otpgate.db.key")
	for _, f := range []string{dbPath, keyPath} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	key, err := secret.Create(keyPath, nil)
	if err != nil {
		return err
	}
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		return err
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.PutMeta("key_id", []byte(key.ID())) }); err != nil {
		db.Close()
		return err
	}
	now := time.Now()
	totpUser := func(name, tenant string) (store.User, error) {
		sealed, err := policy.SealTOTP(key, name, totpSecret)
		return store.User{Name: name, Tenant: tenant, Method: policy.MethodTOTP,
			TOTP: &store.TOTP{Sealed: sealed, Created: now}, Created: now, Updated: now}, err
	}
	kinds := []struct {
		n    int
		make func(i int) (store.User, error)
	}{
		{p.office, func(i int) (store.User, error) { return totpUser(officeName(i), "acme") }},
		{p.totp, func(i int) (store.User, error) { return totpUser(totpName(i), p.tenantOf(i)) }},
		{p.code, func(i int) (store.User, error) {
			return store.User{Name: codeName(i), Tenant: "acme", Method: policy.MethodSMS, Phone: phoneOf(i), Created: now, Updated: now}, nil
		}},
	}
	const batch = 10000
	for _, k := range kinds {
		for from := 0; from < k.n; from += batch {
			users := make([]store.User, 0, batch)
			for i := from; i < min(from+batch, k.n); i++ {
				u, err := k.make(i)
				if err != nil {
					db.Close()
					return err
				}
				users = append(users, u)
			}
			err := db.Update(func(tx *store.Tx) error {
				for _, u := range users {
					if err := tx.PutUser(u); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				db.Close()
				return err
			}
		}
	}
	return db.Close()
}
