package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/policy"
)

// SelfService is what the user's own pages need of the decision, beyond
// Engine: the invitations, enrolment and account operations of
// policy.Engine (see policy/selfservice.go). Codes typed there are
// answered through Engine.Decide.
type SelfService interface {
	Enrolment(token string) (policy.Enrolment, bool)
	EnrolPassword(ctx context.Context, token, mode, password string, ip netip.Addr) bool
	UseInvite(token string) (bool, error)
	Reprove(ctx context.Context, client, user string, noFirstFactor bool) policy.Result
	StartLink(client, user string, noFirstFactor bool) (secretText, state string, err error)
	DropLink(user, secretText string) error
	StartPhone(ctx context.Context, client, user, number string) policy.Result
	NewRecovery(user string) ([]string, error)
	Profile(user string) (policy.Profile, error)
	ForgetIP(user string, ip netip.Addr) error
	NotMe(ctx context.Context, user string, ip netip.Addr, about time.Time) error
}

// Stages of the enrolment page and the account page.
const (
	stagePassword  = "password"  // the first factor
	stageCurrent   = "current"   // a code of the second factor the user has
	stageChoose    = "choose"    // app or SMS
	stageLink      = "link"      // QR code, secret, first code
	stagePhone     = "phone"     // the mobile number
	stagePhoneCode = "phonecode" // the code sent to it
	stageCodes     = "codes"     // recovery codes, once
	stageDone      = "done"
)

var (
	sixDigits  = regexp.MustCompile(`^[0-9]{6}$`)
	sentDigits = regexp.MustCompile(`^[0-9]{4,8}$`)
)

// enrolView is what the enrolment and account pages show of a session.
type enrolView struct {
	Stage, Action string
	User          string
	Prompt        string
	QR            template.URL // a data: URL of the QR code's PNG
	URI           template.URL // the otpauth:// link
	Groups        []string     // the secret in groups of four
	Codes         []string
	Phone         string
	CanSMS        bool
	Expires       string
}

// showEnrol is the page behind an invitation link.
func (s *Server) showEnrol(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	t := texts(langOf(r, ""))
	if se := s.session(r, "enrol"); se != nil && se.token == token {
		se.mu.Lock()
		defer se.mu.Unlock()
		s.renderEnrol(w, r, se, "")
		return
	}
	en, ok := s.Self.Enrolment(token)
	if !ok {
		s.render(w, http.StatusGone, page{T: t, Title: t.EnrolTitle, Done: t.InviteGone})
		return
	}
	se := &session{kind: "enrol", user: en.User, token: token, lang: en.Lang}
	if !s.startSession(w, r, se, enrolFor) {
		s.render(w, http.StatusServiceUnavailable, page{T: t, Title: t.EnrolTitle, Done: t.TooMany})
		return
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	if s.codeOnly() {
		s.afterPassword(r, se, en)
	} else {
		se.stage = stagePassword
	}
	s.renderEnrol(w, r, se, "")
}

// afterPassword moves an enrolment on once the first factor is proved (or
// there is none): to a code of the app the user has, else to the choice.
func (s *Server) afterPassword(r *http.Request, se *session, en policy.Enrolment) string {
	if !en.HasTOTP {
		se.stage = stageChoose
		return ""
	}
	res := s.Self.Reprove(r.Context(), policy.ClientEnrol, se.user, s.codeOnly())
	if res.Decision != policy.Challenge {
		se.stage = stageDone
		return res.Message
	}
	se.stage, se.state, se.prompt = stageCurrent, res.State, res.Message
	return ""
}

// enrol takes the enrolment page's forms.
func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	t := texts(langOf(r, ""))
	se := s.session(r, "enrol")
	if se == nil || se.token != token || !sameOrigin(r) || !s.csrfOK(r, "enrol:"+token) {
		s.render(w, http.StatusForbidden, page{T: t, Title: t.EnrolTitle, Done: t.Forbidden})
		return
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	t = texts(langOf(r, se.lang))
	if !s.limiter.allow(s.clientIP(r), s.Now()) {
		s.renderEnrol(w, r, se, t.TooMany)
		return
	}
	en, open := s.Self.Enrolment(token)
	if !open && se.stage != stageCodes && se.stage != stageDone {
		s.endSession(w, r)
		s.render(w, http.StatusGone, page{T: t, Title: t.EnrolTitle, Done: t.InviteGone})
		return
	}
	ip := s.clientIP(r)
	msg := ""
	switch action := r.PostFormValue("action"); {
	case se.stage == stagePassword && action == "password":
		if s.Self.EnrolPassword(r.Context(), token, s.FirstFactor, r.PostFormValue("password"), ip) {
			msg = s.afterPassword(r, se, en)
		} else if _, still := s.Self.Enrolment(token); !still {
			s.endSession(w, r)
			s.render(w, http.StatusGone, page{T: t, Title: t.EnrolTitle, Done: t.InviteGone})
			return
		} else {
			msg = t.WrongPassword
		}
	case se.stage == stageChoose && action == "app",
		se.stage == stagePhone && action == "app",
		se.stage == stagePhoneCode && action == "app":
		msg = s.startLink(se, policy.ClientEnrol, t)
	case (se.stage == stageChoose || se.stage == stageLink) && action == "sms" && en.CanSMS && !s.codeOnly():
		// The QR code's page offers SMS too: its secret is dropped.
		s.dropLink(se)
		se.stage = stagePhone
	default:
		var done bool
		if msg, done = s.step(r, se, policy.ClientEnrol, t, action); done {
			if used, err := s.Self.UseInvite(token); err != nil || !used {
				s.endSession(w, r)
				s.render(w, http.StatusGone, page{T: t, Title: t.EnrolTitle, Done: t.InviteGone})
				return
			}
			s.Log.Info("enrolled on the web page", "user", se.user, "method", map[bool]string{true: "totp", false: "sms"}[se.secret != ""], "ip", ip.String())
			msg = s.newCodes(se, t)
		}
	}
	s.renderEnrol(w, r, se, msg)
}

// step takes the forms the enrolment and account pages share: a code of
// the current second factor, the first code of a new app, a mobile number
// and its code, Resend, and "I have saved them". done reports a second
// factor newly enrolled.
func (s *Server) step(r *http.Request, se *session, client string, t text, action string) (msg string, done bool) {
	ip := s.clientIP(r)
	code := strings.Join(strings.Fields(r.PostFormValue("code")), "")
	answer := func(word string) policy.Result {
		return s.Engine.Decide(r.Context(), policy.Request{Client: client, Tenant: s.Tenant, User: se.user,
			State: se.state, Password: word, IP: ip})
	}
	// The prompt says "or type resend" (the same words as at a gateway):
	// typed, it does what the Resend button does.
	if action == "code" && strings.EqualFold(code, "resend") {
		action = "resend"
	}
	switch {
	case se.stage == stageCurrent && action == "code":
		if code == "" {
			return t.CodeNeeded, false
		}
		res := answer(code)
		switch res.Decision {
		case policy.Accept:
			se.state, se.prompt = "", ""
			if client == policy.ClientAccount {
				return s.startLink(se, client, t), false
			}
			se.stage = stageChoose
			return "", false
		case policy.Challenge:
			se.state = res.State
			return res.Message, false
		}
		se.stage, se.state = stageDone, ""
		return orText(res.Message, t.Failed), false
	case (se.stage == stageCurrent || se.stage == stagePhoneCode) && action == "resend":
		res := answer("resend")
		if res.Decision == policy.Challenge {
			se.state, se.prompt = res.State, res.Message
			return "", false
		}
		return orText(res.Message, t.Failed), false
	case se.stage == stageLink && action == "code":
		if !sixDigits.MatchString(code) {
			return t.SixDigits, false
		}
		res := answer(code)
		switch {
		case res.Decision == policy.Accept && res.Reason == "totp_linked":
			se.state = ""
			return "", true
		case res.Decision == policy.Challenge:
			se.state = res.State
			return res.Message, false
		}
		s.dropLink(se)
		se.stage = stageChoose
		return orText(res.Message, t.Failed), false
	case se.stage == stagePhone && action == "phone":
		res := s.Self.StartPhone(r.Context(), client, se.user, r.PostFormValue("phone"))
		if res.Decision != policy.Challenge {
			return orText(res.Message, t.Failed), false
		}
		se.stage, se.state, se.prompt = stagePhoneCode, res.State, res.Message
		return "", false
	case se.stage == stagePhoneCode && action == "code":
		if !sentDigits.MatchString(code) {
			return t.CodeNeeded, false
		}
		res := answer(code)
		switch res.Decision {
		case policy.Accept:
			se.state = ""
			return "", true
		case policy.Challenge:
			se.state = res.State
			return res.Message, false
		}
		se.stage, se.state = stagePhone, ""
		return orText(res.Message, t.Failed), false
	case se.stage == stageCodes && action == "saved":
		if r.PostFormValue("saved") == "" {
			return t.TickSaved, false
		}
		se.codes, se.stage = nil, stageDone
		return "", false
	}
	return "", false
}

// startLink makes a new app secret for the session's user and shows it.
func (s *Server) startLink(se *session, client string, t text) string {
	secretText, state, err := s.Self.StartLink(client, se.user, s.codeOnly())
	if err != nil {
		s.Log.Error("link an authenticator app", "user", se.user, "err", err)
		return t.Failed
	}
	se.stage, se.secret, se.state = stageLink, secretText, state
	return ""
}

// dropLink forgets the app secret the session made and left unproved, so
// that a gateway does not ask for a code from it (see policy.DropLink).
func (s *Server) dropLink(se *session) {
	if se.secret != "" {
		if err := s.Self.DropLink(se.user, se.secret); err != nil {
			s.Log.Error("drop an app link", "user", se.user, "err", err)
		}
	}
	se.secret, se.state = "", ""
}

// newCodes gives the session's user new recovery codes, to show once.
func (s *Server) newCodes(se *session, t text) string {
	codes, err := s.Self.NewRecovery(se.user)
	if err != nil {
		s.Log.Error("new recovery codes", "user", se.user, "err", err)
		se.stage = stageDone
		return t.Failed
	}
	se.stage, se.codes, se.secret = stageCodes, codes, ""
	return ""
}

// renderEnrol shows the enrolment page at its session's stage.
func (s *Server) renderEnrol(w http.ResponseWriter, r *http.Request, se *session, msg string) {
	t := texts(langOf(r, se.lang))
	v, err := s.view(se)
	if err != nil {
		s.Log.Error("render enrolment", "user", se.user, "err", err)
		msg = t.Failed
	}
	v.Action = "/e/" + se.token
	if en, ok := s.Self.Enrolment(se.token); ok {
		v.CanSMS = en.CanSMS && !s.codeOnly()
		v.Phone = en.Phone
		v.Expires = s.local(en.Tenant, en.Expires).Format("2006-01-02 15:04")
	}
	s.render(w, http.StatusOK, page{T: t, Title: t.EnrolTitle, Enrol: &v, Error: msg, CSRF: s.csrf(s.visitor(w, r), "enrol:"+se.token)})
}

// view is what a session's stage shows.
func (s *Server) view(se *session) (enrolView, error) {
	v := enrolView{Stage: se.stage, User: se.user, Prompt: se.prompt, Codes: se.codes}
	if se.stage != stageLink || se.secret == "" {
		return v, nil
	}
	uri := otp.URI(s.issuer(), se.user, se.secret)
	var png bytes.Buffer
	if err := qrPNG(&png, uri); err != nil {
		return v, err
	}
	v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png.Bytes()))
	v.URI = template.URL(uri)
	for i := 0; i < len(se.secret); i += 4 {
		v.Groups = append(v.Groups, se.secret[i:min(i+4, len(se.secret))])
	}
	return v, nil
}

func (s *Server) issuer() string {
	if s.Issuer == "" {
		return "otpgate"
	}
	return s.Issuer
}

func orText(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}
