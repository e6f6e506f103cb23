// Package directory checks first-factor passwords against an LDAP
// directory (Active Directory, OpenLDAP) by binding as the user, and reads
// the user's phone number and e-mail address from it.
package directory

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/policy"
)

// Directory checks passwords against one directory, served by one or more
// servers. It is a policy.PasswordChecker, safe for concurrent use; each
// check opens its own connection.
type Directory struct {
	c       Config
	servers []*url.URL
}

// CheckPassword binds to the directory as user with password and returns
// the phone number and e-mail address of the user's entry.
//
// A wrong password, an unknown user, a search that finds more than one
// entry, an empty password (which LDAP would take for an anonymous bind)
// and a name with control characters are policy.ErrBadPassword, the last
// two without asking any server. A wrong password is final: the next
// server is asked only when one cannot answer. Any other error means no
// server could answer; it names each and why, never the password.
// The gateway's attributes (nas) are not used.
func (d *Directory) CheckPassword(ctx context.Context, user, password string, _ []dictionary.Attribute) (policy.Identity, error) {
	user, ok := d.name(user)
	if !ok || password == "" {
		return policy.Identity{}, policy.ErrBadPassword
	}
	var errs failures
	for _, u := range d.servers {
		if err := ctx.Err(); err != nil {
			return policy.Identity{}, fmt.Errorf("check password: %w", err)
		}
		id, err := d.ask(ctx, u, user, password)
		switch {
		case err == nil:
			return id, nil
		case errors.Is(err, policy.ErrBadPassword):
			return policy.Identity{}, err
		case ctx.Err() != nil:
			return policy.Identity{}, fmt.Errorf("check password: %w", ctx.Err())
		}
		errs = append(errs, fmt.Errorf("%s: %w", u.Redacted(), err))
	}
	return policy.Identity{}, fmt.Errorf("check password: %w", errs)
}

// name applies the name rules to user, and reports whether what is left
// may be given to a server: not empty, valid UTF-8, no control characters.
func (d *Directory) name(user string) (string, bool) {
	if !utf8.ValidString(user) || strings.ContainsFunc(user, unicode.IsControl) {
		return "", false
	}
	if d.c.StripDomain {
		if i := strings.LastIndexByte(user, '\\'); i >= 0 {
			user = user[i+1:]
		}
	}
	if d.c.StripRealm {
		if i := strings.LastIndexByte(user, '@'); i >= 0 {
			user = user[:i]
		}
	}
	user = strings.TrimSpace(user)
	return user, user != ""
}

// failures is what each server said when none could answer.
type failures []error

func (f failures) Error() string {
	msgs := make([]string, len(f))
	for i, err := range f {
		msgs[i] = err.Error()
	}
	return "no directory server answered: " + strings.Join(msgs, "; ")
}

func (f failures) Unwrap() []error { return f }
