// Package web is otpgate's own web page, for gateways that cannot show a
// prompt (Microsoft RD Gateway): the page behind an approval link, where a
// held login is approved or denied, and the sign-in page, where a user
// proves a code to pre-approve their next logins. Pages are rendered on
// the server, need no external assets and fit a phone screen.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/otpgate/otpgate/policy"
)

// Engine is what the pages need of the decision.
type Engine interface {
	Decide(ctx context.Context, req policy.Request) policy.Result
	Approval(token string) (policy.Approval, bool)
	Resolve(token string, approve bool) error
}

// Server serves the pages.
type Server struct {
	Engine Engine
	// Tenant is the sign-in page's tenant: its words, limits and lockout
	// apply until a first factor is proved, and to names it does not know.
	Tenant string
	// FirstFactor is how the sign-in page checks a password before it asks
	// for a code: policy.FirstFactorLocal, FirstFactorLDAP or
	// FirstFactorRADIUS. Anything else, the zero value too, means no
	// password: only an authenticator app's code or a recovery code, and
	// nothing sent (see policy.FirstFactorNone).
	FirstFactor string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed; empty means the connection's address is the user's.
	TrustedProxies []netip.Prefix
	// SignInsPerMinute bounds sign-in attempts per user address; zero means 10.
	SignInsPerMinute int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives errors; nil means discard.
	Log *slog.Logger
	// Self serves the user's own pages: the enrolment behind an
	// invitation link (/e/TOKEN) and the signed-in user's page (/me); nil
	// means they are off.
	Self SelfService
	// Issuer names the service in authenticator apps; empty means "otpgate".
	Issuer string
	// DisplayName is the name users are shown for a gateway, by its
	// configured name, as in force now (a reload changes it); nil means
	// the configured name.
	DisplayName func(client string) string
	// Zone is a tenant's time zone as in force now, for the times pages
	// show; nil, or a nil zone, means the server's.
	Zone func(tenant string) *time.Location

	limiter  *limiter
	csrfKey  []byte
	sessions sessions
}

// Handler returns the pages' routes.
func (s *Server) Handler() http.Handler {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.SignInsPerMinute == 0 {
		s.SignInsPerMinute = 10
	}
	s.limiter = newLimiter(s.SignInsPerMinute, time.Minute)
	s.csrfKey = make([]byte, 32)
	rand.Read(s.csrfKey)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /a/{token}", s.showApproval)
	mux.HandleFunc("POST /a/{token}", s.decideApproval)
	mux.HandleFunc("GET /signin", s.showSignIn)
	mux.HandleFunc("POST /signin", s.signIn)
	if s.Self != nil {
		s.sessions.byID = map[[32]byte]*session{}
		mux.HandleFunc("GET /e/{token}", s.showEnrol)
		mux.HandleFunc("POST /e/{token}", s.enrol)
		mux.HandleFunc("GET /me", s.showAccount)
		mux.HandleFunc("POST /me", s.account)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
	})
	return headers(mux)
}

// csp lets a page load nothing from elsewhere: its own inline styles,
// images inline (the QR code) and one inline script, known by its hash,
// that only adds a print button.
var csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src '" + printScriptHash + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets what every page sends: no caching, no framing, no
// referrer to other sites, nothing loaded from elsewhere, and, over TLS, HTTPS only from
// now on.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-store")
		// same-origin, not no-referrer: under no-referrer browsers send
		// "Origin: null" with our own forms, which sameOrigin refuses.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) showApproval(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	a, ok := s.Engine.Approval(token)
	if !ok {
		s.render(w, http.StatusGone, page{T: texts(langOf(r, "")), Done: texts(langOf(r, "")).Gone})
		return
	}
	t := texts(langOf(r, a.Lang))
	s.render(w, http.StatusOK, page{T: t, Approval: &a, Gateway: s.displayName(a.Client), When: s.local(a.Tenant, a.Created).Format("15:04:05"),
		CSRF: s.csrf(s.visitor(w, r), "approve:"+token)})
}

func (s *Server) decideApproval(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	t := texts(langOf(r, ""))
	if !sameOrigin(r) || !s.csrfOK(r, "approve:"+token) {
		s.render(w, http.StatusForbidden, page{T: t, Done: t.Forbidden})
		return
	}
	a, _ := s.Engine.Approval(token)
	if a.Lang != "" {
		t = texts(langOf(r, a.Lang))
	}
	approve := r.PostFormValue("action") == "approve"
	if err := s.Engine.Resolve(token, approve); err != nil {
		s.render(w, http.StatusGone, page{T: t, Done: t.Gone})
		return
	}
	s.Log.Info("approval decided", "user", a.User, "client", a.Client, "approved", approve, "ip", s.clientIP(r).String())
	done := t.Denied
	if approve {
		done = t.Approved
	}
	s.render(w, http.StatusOK, page{T: t, Done: done})
}

func (s *Server) showSignIn(w http.ResponseWriter, r *http.Request) {
	t := texts(langOf(r, ""))
	to := s.signInTo(r)
	if to == "me" && s.codeOnly() {
		s.render(w, http.StatusOK, page{T: t, Title: t.AccountTitle, Done: t.AccountNeedsPassword})
		return
	}
	s.render(w, http.StatusOK, s.signInPage(t, s.visitor(w, r), to))
}

// signInTo is where a sign-in leads: "me" for the user's own page, ""
// for pre-approval.
func (s *Server) signInTo(r *http.Request) string {
	if s.Self != nil && r.FormValue("to") == "me" {
		return "me"
	}
	return ""
}

// signInPage is the sign-in form's first step: the name, and the password
// where otpgate can check one.
func (s *Server) signInPage(t text, visitor, to string) page {
	p := page{T: t, Title: t.SignInTitle, SignIn: true, AskPassword: !s.codeOnly(), CSRF: s.csrf(visitor, "signin"), To: to}
	if to == "me" {
		p.Title = t.AccountTitle
	}
	return p
}

// codeOnly reports whether the sign-in page has no password to check.
func (s *Server) codeOnly() bool {
	switch s.FirstFactor {
	case policy.FirstFactorLocal, policy.FirstFactorLDAP, policy.FirstFactorRADIUS:
		return false
	}
	return true
}

// signIn takes the sign-in form: a name and a password (first step), or a
// name, State and code (next steps). It goes through the same decision as
// a gateway's login, as the client "web", with the first factor
// configured for the page; only a code proved here pre-approves the user.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	t := texts(langOf(r, ""))
	if !sameOrigin(r) || !s.csrfOK(r, "signin") {
		s.render(w, http.StatusForbidden, page{T: t, Done: t.Forbidden})
		return
	}
	visitor := s.visitorOf(r)
	to := s.signInTo(r)
	if to == "me" && s.codeOnly() {
		s.render(w, http.StatusOK, page{T: t, Title: t.AccountTitle, Done: t.AccountNeedsPassword})
		return
	}
	first := s.signInPage(t, visitor, to)
	ip := s.clientIP(r)
	if !s.limiter.allow(ip, s.Now()) {
		first.Error = t.TooMany
		s.render(w, http.StatusTooManyRequests, first)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		first.Error = t.NameNeeded
		s.render(w, http.StatusOK, first)
		return
	}
	firstFactor := s.FirstFactor
	if s.codeOnly() {
		firstFactor = policy.FirstFactorNone
	}
	req := policy.Request{
		Client: "web", Tenant: s.Tenant, FirstFactor: firstFactor, User: name,
		Password: r.PostFormValue("password"), IP: ip, SignIn: true,
	}
	if to == "me" {
		req.Client, req.SelfService = policy.ClientAccount, true
	}
	if state := r.PostFormValue("state"); state != "" {
		req.State, req.Password = state, r.PostFormValue("code")
	}
	res := s.Engine.Decide(r.Context(), req)
	switch res.Decision {
	case policy.Challenge:
		next := first
		next.Name, next.State, next.Prompt = name, res.State, res.Message
		s.render(w, http.StatusOK, next)
	case policy.Accept:
		if to == "me" {
			lang := ""
			if p, err := s.Self.Profile(res.User); err == nil && p.Tenant != nil {
				lang = p.Tenant.Language
			}
			if !s.startSession(w, r, &session{kind: "account", user: res.User, lang: lang}, accountFor) {
				first.Error = t.TooMany
				s.render(w, http.StatusServiceUnavailable, first)
				return
			}
			http.Redirect(w, r, "/me", http.StatusSeeOther)
			return
		}
		s.render(w, http.StatusOK, page{T: t, Title: t.SignInTitle, Done: t.Preapproved})
	default:
		first.Error = res.Message
		if first.Error == "" {
			first.Error = t.Failed
		}
		s.render(w, http.StatusOK, first)
	}
}

// visitorCookie holds a random value per browser, to which the forms'
// tokens are bound.
const visitorCookie = "otpgate_visitor"

// visitor returns the browser's visitor value, giving it one first when it
// has none.
func (s *Server) visitor(w http.ResponseWriter, r *http.Request) string {
	if v := s.visitorOf(r); v != "" {
		return v
	}
	b := make([]byte, 16)
	rand.Read(b)
	v := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: visitorCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return v
}

// visitorOf returns the visitor value the request carries, or "".
func (s *Server) visitorOf(r *http.Request) string {
	c, err := r.Cookie(visitorCookie)
	if err != nil || len(c.Value) != 32 {
		return ""
	}
	if _, err := hex.DecodeString(c.Value); err != nil {
		return ""
	}
	return c.Value
}

// csrf is the form token for a visitor and a purpose: an HMAC under a key
// made at start, so that a form from another site, or another browser's
// token, does not pass.
func (s *Server) csrf(visitor, purpose string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(visitor))
	m.Write([]byte{0})
	m.Write([]byte(purpose))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) csrfOK(r *http.Request, purpose string) bool {
	visitor := s.visitorOf(r)
	if visitor == "" {
		return false
	}
	got, err := hex.DecodeString(r.PostFormValue("csrf"))
	if err != nil {
		return false
	}
	want, _ := hex.DecodeString(s.csrf(visitor, purpose))
	return hmac.Equal(got, want)
}

// sameOrigin refuses a form posted from another site, where the browser
// says so, and from an opaque origin ("null": a sandboxed frame, a data:
// URL, a redirect across sites).
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host == r.Host
	}
	return true
}

// clientIP is the user's address: the connection's, or, behind a trusted
// proxy, the last address in X-Forwarded-For that is not a trusted proxy.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	ip = ip.Unmap()
	if !s.trusted(ip) {
		return ip
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		hop = hop.Unmap()
		if !s.trusted(hop) {
			return hop
		}
		ip = hop
	}
	return ip
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
