package main

import (
	"strings"
	"testing"
)

// step is one CLI command and what it must print (in stdout and stderr,
// runs of spaces squashed) and exit with.
type step struct {
	args   []string
	status int
	want   []string
	not    []string // must not appear
}

func runSteps(t *testing.T, cfg string, steps []step) {
	t.Helper()
	for _, st := range steps {
		out, errOut, status := cliRun(t, cfg, "", st.args...)
		got := squash(out + errOut)
		ok := status == st.status
		for _, w := range st.want {
			ok = ok && strings.Contains(got, w)
		}
		for _, n := range st.not {
			ok = ok && !strings.Contains(got, n)
		}
		if !ok {
			t.Errorf("otpgate %s: got status %d and\n%s\nwant status %d with %q and without %q", strings.Join(st.args, " "), status, got, st.status, st.want, st.not)
		}
	}
}

// TestUsersThatCannotLogIn: what cannot work is refused naming the
// tenant's rule, and what will not work yet is said, when the admin adds
// or changes a user, not at the user's first login.
func TestUsersThatCannotLogIn(t *testing.T) {
	_, cfg := writeConfig(t, cliConfig)
	runSteps(t, cfg, []step{
		// sms without a phone, email where the tenant has no email.
		{args: []string{"user", "add", "ivan", "--tenant", "acme", "--method", "sms"}, status: 2, want: []string{"--method sms needs a phone number; give --phone too"}},
		{args: []string{"user", "show", "ivan"}, status: 1, want: []string{"no user ivan"}},
		{args: []string{"user", "add", "eve", "--tenant", "other", "--method", "email", "--email", "eve@example.com"}, status: 2, want: []string{"--method email: tenant other allows totp (its methods:)"}},
		// A number the tenant will never send to.
		{args: []string{"user", "add", "hal", "--tenant", "nl", "--phone", "+44 7700 900123"}, status: 2, want: []string{"--phone +447700900123: tenant nl sends codes only to country code 31 (its limits.countries), not to +44"}},
		// Taking away the phone of an SMS user.
		{args: []string{"user", "add", "alice", "--tenant", "acme", "--phone", "+31612345678"}, status: 0, want: []string{"added user alice"}, not: []string{"warning"}},
		{args: []string{"user", "set", "alice", "--phone", ""}, status: 2, want: []string{"--phone is empty, but --method sms needs one"}},
		{args: []string{"user", "set", "alice", "--tenant", "other"}, status: 2, want: []string{"tenant other allows totp"}},
		{args: []string{"user", "set", "alice", "--phone", "", "--method", "email", "--email", "alice@example.com"}, status: 0, want: []string{"updated user alice"}},
		{args: []string{"user", "show", "alice"}, status: 0, want: []string{"method: email", "phone: none", "can log in: yes"}},
		// A phone and a backup of sms: not sms,sms.
		{args: []string{"user", "add", "kim", "--tenant", "acme", "--phone", "+31612345670", "--backup-method", "sms"}, status: 0, want: []string{"note: sms is kim's only method, so it is the primary one and there is no backup"}},
		{args: []string{"user", "show", "kim"}, status: 0, want: []string{"method: sms", "backup method: none"}},
		// An e-mail address in a tenant that sends no e-mail: no method.
		{args: []string{"user", "add", "otto", "--tenant", "other", "--email", "otto@example.com"}, status: 0, want: []string{"warning: otto cannot log in: no second factor; tenant other requires a second factor"}},
		// No method at all: warned, and show and list say so.
		{args: []string{"user", "add", "bob", "--tenant", "acme"}, status: 0, want: []string{"added user bob", "warning: bob cannot log in: no second factor", "otpgate user totp bob"}},
		{args: []string{"user", "show", "bob"}, status: 0, want: []string{"can log in: NO: no second factor"}},
		{args: []string{"user", "list"}, status: 0, want: []string{"bob acme - tenant no - - NO: no second factor"}},
		// Recovery codes do not help a user who cannot be challenged.
		{args: []string{"user", "recovery-codes", "bob"}, status: 0},
		{args: []string{"user", "show", "bob"}, status: 0, want: []string{"their recovery codes cannot help"}},
		// A pending TOTP only: not yet, and the list says pending, not yes.
		{args: []string{"user", "totp", "bob"}, status: 0},
		{args: []string{"user", "show", "bob"}, status: 0, want: []string{"can log in: yes; their authenticator app is still being linked"}},
		{args: []string{"user", "list"}, status: 0, want: []string{"bob acme - tenant pending - - yes"}},
		// A method with nothing behind it from an older record, then fixed.
		{args: []string{"user", "set", "bob", "--method", "totp"}, status: 0, want: []string{"updated user bob"}},
		{args: []string{"user", "set", "bob", "--method", "totp"}, status: 0, want: []string{"user bob already had these settings; nothing changed"}},
	})
}
