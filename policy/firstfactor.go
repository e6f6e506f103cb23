package policy

import (
	"context"
	"errors"

	"github.com/otpgate/otpgate/dictionary"
)

// First-factor modes that ask another system.
const (
	// FirstFactorLDAP binds to a directory (Active Directory, OpenLDAP) as the user.
	FirstFactorLDAP = "ldap"
	// FirstFactorRADIUS forwards the password to upstream RADIUS servers.
	FirstFactorRADIUS = "radius"
)

// ErrBadPassword is what a PasswordChecker returns for a wrong user name or
// password: a plain Reject that tells nothing more.
var ErrBadPassword = errors.New("wrong user name or password")

// PasswordChecker checks a first-factor password against a directory or an
// upstream server. nas are the gateway's attributes that describe the
// login (NAS-IP-Address, Called-Station-Id, ...), for a checker that
// passes them on. Any error but ErrBadPassword means the check could not
// be made (every server down), and the login fails closed.
type PasswordChecker interface {
	CheckPassword(ctx context.Context, user, password string, nas []dictionary.Attribute) (Identity, error)
}

// Identity is what the checker knows of a user whose password was right.
type Identity struct {
	// Phone and Email are from the directory, as stored there; empty when
	// it has none (or the checker cannot tell).
	Phone, Email string
	// Groups are the directory groups the user is in, as the checker
	// writes their names; nil when it cannot tell.
	Groups []string
	// Reply are the attributes an upstream server's Accept carried, to be
	// passed on to the gateway.
	Reply []dictionary.Attribute
}
