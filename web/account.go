package web

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/otpgate/otpgate/policy"
)

// loginView is one of the user's logins on their own page.
type loginView struct {
	At, Gateway, IP, Result string
	Ok                      bool
	Stamp                   string // the entry's time, for "this was not me"
}

// accountView is the signed-in user's own page.
type accountView struct {
	// View is the step under way, if any (Stage empty: the overview).
	View        enrolView
	Method      string
	Remembered  []rememberedView
	Logins      []loginView
	Recovery    int
	HasTOTP     bool
	LockedShown bool
}

type rememberedView struct{ IP, Until string }

// showAccount is the signed-in user's own page; without a session it
// sends the browser to sign in first.
func (s *Server) showAccount(w http.ResponseWriter, r *http.Request) {
	se := s.accountSession(r)
	if se == nil {
		http.Redirect(w, r, "/signin?to=me", http.StatusSeeOther)
		return
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	s.renderAccount(w, r, se, "")
}

// accountSession is the request's session of the user's own page, while
// its user is not locked out.
func (s *Server) accountSession(r *http.Request) *session {
	se := s.session(r, "account")
	if se == nil {
		return nil
	}
	p, err := s.Self.Profile(se.user)
	if err != nil || s.Now().Before(p.User.LockedUntil) {
		s.endSessionsOf(r, se.user)
		return nil
	}
	return se
}

// account takes the forms of the user's own page.
func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	t := texts(langOf(r, ""))
	if !sameOrigin(r) || !s.csrfOK(r, "account") {
		s.render(w, http.StatusForbidden, page{T: t, Title: t.AccountTitle, Done: t.Forbidden})
		return
	}
	se := s.accountSession(r)
	if se == nil {
		http.Redirect(w, r, "/signin?to=me", http.StatusSeeOther)
		return
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	t = texts(langOf(r, se.lang))
	if !s.limiter.allow(s.clientIP(r), s.Now()) {
		s.renderAccount(w, r, se, t.TooMany)
		return
	}
	ip := s.clientIP(r)
	msg := ""
	switch action := r.PostFormValue("action"); action {
	case "link", "codes":
		// A new phone, or new recovery codes, are a second factor: a
		// session alone, which may be someone else's at the user's
		// computer, does not get them; the current second factor (or an
		// old recovery code) is proved first.
		res := s.Self.Reprove(r.Context(), policy.ClientAccount, se.user, false)
		if res.Decision != policy.Challenge {
			msg = orText(res.Message, t.Failed)
			break
		}
		next := stageCurrent
		if action == "codes" {
			next = stageCodesCurrent
		}
		se.stage, se.state, se.prompt = next, res.State, res.Message
	case "forget":
		addr, err := netip.ParseAddr(r.PostFormValue("ip"))
		if err == nil {
			err = s.Self.ForgetIP(se.user, addr)
		}
		if err != nil {
			msg = t.Failed
			break
		}
		s.Log.Info("a user forgot a remembered IP", "user", se.user, "forgot", addr.String(), "ip", ip.String())
		msg = t.Forgotten
	case "notme":
		about, _ := time.Parse(time.RFC3339Nano, r.PostFormValue("at"))
		if err := s.Self.NotMe(r.Context(), se.user, ip, about); err != nil {
			s.Log.Error("this was not me", "user", se.user, "err", err)
			msg = t.Failed
			break
		}
		s.endSessionsOf(r, se.user)
		s.endSession(w, r)
		s.render(w, http.StatusOK, page{T: t, Title: t.AccountTitle, Done: t.LockedNotMe})
		return
	case "signout":
		s.endSession(w, r)
		s.render(w, http.StatusOK, page{T: t, Title: t.AccountTitle, Done: t.SignedOut})
		return
	case "back":
		if se.stage == stageLink {
			s.dropLink(se)
		}
		se.stage, se.state, se.secret, se.codes = "", "", "", nil
	default:
		var done bool
		if msg, done = s.step(r, se, policy.ClientAccount, t, action); done {
			s.Log.Info("a user linked a new authenticator app on their own page", "user", se.user, "ip", ip.String())
			se.stage, se.secret = stageDone, ""
			msg = t.Linked
		}
	}
	s.renderAccount(w, r, se, msg)
}

// renderAccount shows the user's own page: a step under way, or the
// overview.
func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, se *session, msg string) {
	t := texts(langOf(r, se.lang))
	v := accountView{}
	var err error
	if v.View, err = s.view(se); err != nil {
		s.Log.Error("render account", "user", se.user, "err", err)
		msg = t.Failed
	}
	v.View.Action = "/me"
	p, err := s.Self.Profile(se.user)
	if err != nil {
		s.Log.Error("read account", "user", se.user, "err", err)
		s.render(w, http.StatusInternalServerError, page{T: t, Title: t.AccountTitle, Done: t.Failed})
		return
	}
	now := s.Now()
	v.Method, v.Recovery, v.HasTOTP = p.User.Method, len(p.User.Recovery), p.User.TOTP != nil
	for _, rem := range p.User.Remembered {
		if now.Before(rem.Until) {
			v.Remembered = append(v.Remembered, rememberedView{IP: rem.IP.String(), Until: p.Tenant.Local(rem.Until).Format("2006-01-02 15:04")})
		}
	}
	for _, e := range p.Logins {
		v.Logins = append(v.Logins, loginView{
			At: p.Tenant.Local(e.Time).Format("2006-01-02 15:04"), Gateway: s.displayName(e.Client),
			IP: orText(e.IP, "–"), Ok: e.Decision == "accept", Result: e.Decision, Stamp: e.Time.Format(time.RFC3339Nano),
		})
	}
	s.render(w, http.StatusOK, page{T: t, Title: t.AccountTitle, Account: &v, Error: msg, CSRF: s.csrf(s.visitor(w, r), "account")})
}

// displayName is what users are shown for a gateway: its display_name,
// else its name.
func (s *Server) displayName(client string) string {
	if s.DisplayName != nil {
		return s.DisplayName(client)
	}
	return client
}

// local is at in tenant's time zone, else the server's.
func (s *Server) local(tenant string, at time.Time) time.Time {
	if s.Zone != nil {
		if z := s.Zone(tenant); z != nil {
			return at.In(z)
		}
	}
	return at.Local()
}
