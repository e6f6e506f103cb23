package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"
)

// sessionCookie holds the id of a session of the user's own pages: the
// enrolment behind an invitation link, or the signed-in user's page.
const sessionCookie = "otpgate_session"

// Session lifetimes: an enrolment may take a while with a phone in hand;
// the user's own page lasts minutes after its sign-in.
const (
	enrolFor   = 30 * time.Minute
	accountFor = 10 * time.Minute
)

// maxSessions bounds the sessions held in memory; past it the expired go,
// and when none has, no new one is made (fail closed).
const maxSessions = 10000

// Sessions keeps the sessions of the user's own pages, by the hash of
// their id, each sealed with the server key: in this process's memory on
// a single node, in etcd on a cluster (live.Cluster), so that any node
// serves any request of a browser. A session is written before the
// answer to the request that changed it is sent.
type Sessions interface {
	// PutSession keeps data as the session id of user until expires.
	PutSession(id [32]byte, user string, data []byte, expires time.Time) error
	// Session returns the data of session id; false when there is none.
	Session(id [32]byte) ([]byte, bool, error)
	// DeleteSession ends session id.
	DeleteSession(id [32]byte) error
	// DeleteSessionsOf ends every session of user.
	DeleteSessionsOf(user string) error
}

// session is one browser's way through the user's own pages. Nothing of
// it is in the page but its id, in an HttpOnly cookie.
type session struct {
	mu      sync.Mutex // held while a handler works on it (see sessionLocks for requests)
	id      [32]byte   // the hash of the cookie's value
	kind    string     // "enrol" or "account"
	user    string
	token   string // the invitation, for "enrol"
	lang    string
	stage   string
	state   string   // the challenge waiting for an answer
	prompt  string   // its question
	secret  string   // the authenticator-app secret being linked
	codes   []string // recovery codes, until the user says they saved them
	expires time.Time
}

// sessionData is a session as kept.
type sessionData struct {
	Kind    string    `json:"kind"`
	User    string    `json:"user"`
	Token   string    `json:"token,omitempty"`
	Lang    string    `json:"lang,omitempty"`
	Stage   string    `json:"stage,omitempty"`
	State   string    `json:"state,omitempty"`
	Prompt  string    `json:"prompt,omitempty"`
	Secret  string    `json:"secret,omitempty"`
	Codes   []string  `json:"codes,omitempty"`
	Expires time.Time `json:"expires"`
}

// sessionContext is the seal's context of session id: a sealed session
// opens under its own id only.
func sessionContext(id [32]byte) string {
	return "otpgate web session v1\x00" + hex.EncodeToString(id[:])
}

func (s *Server) sealSession(se *session) ([]byte, error) {
	b, err := json.Marshal(sessionData{Kind: se.kind, User: se.user, Token: se.token, Lang: se.lang, Stage: se.stage,
		State: se.state, Prompt: se.prompt, Secret: se.secret, Codes: se.codes, Expires: se.expires})
	if err != nil || s.Key == nil {
		return b, err
	}
	return s.Key.Seal(b, sessionContext(se.id))
}

func (s *Server) openSession(id [32]byte, b []byte) (*session, error) {
	if s.Key != nil {
		var err error
		if b, err = s.Key.Open(b, sessionContext(id)); err != nil {
			return nil, err
		}
	}
	var d sessionData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return &session{id: id, kind: d.Kind, user: d.User, token: d.Token, lang: d.Lang, stage: d.Stage, state: d.State,
		prompt: d.Prompt, secret: d.Secret, codes: d.Codes, expires: d.Expires}, nil
}

// requestSession is the session a request read or started, written back
// before its answer goes out (see keepSessions).
type requestSession struct {
	se     *session
	locked [32]byte // the id whose lock the request holds
	unlock func()   // releases it; nil while none is held
}

// lock takes this node's lock of session id for the rest of the request,
// so that two requests of one browser at one node run one after the
// other, each on what the one before kept.
func (rs *requestSession) lock(locks *sessionLocks, id [32]byte) {
	if rs.unlock != nil {
		if rs.locked == id {
			return
		}
		rs.unlock()
	}
	rs.locked, rs.unlock = id, locks.lock(id)
}

// sessionLocks are this node's locks of the sessions its requests use.
type sessionLocks struct {
	mu sync.Mutex
	m  map[[32]byte]*sessionLock
}

type sessionLock struct {
	sync.Mutex
	users int // requests holding or waiting for it
}

func (l *sessionLocks) lock(id [32]byte) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[[32]byte]*sessionLock{}
	}
	k := l.m[id]
	if k == nil {
		k = &sessionLock{}
		l.m[id] = k
	}
	k.users++
	l.mu.Unlock()
	k.Lock()
	return func() {
		k.Unlock()
		l.mu.Lock()
		if k.users--; k.users == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}

type requestSessionKey struct{}

// keepSessions writes the session a request used before the first byte
// of its answer, so that the browser's next request, at whichever node,
// finds what this one did.
func (s *Server) keepSessions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs := &requestSession{}
		r = r.WithContext(context.WithValue(r.Context(), requestSessionKey{}, rs))
		sw := &sessionWriter{ResponseWriter: w, s: s, rs: rs}
		defer func() {
			sw.save() // a handler that wrote nothing
			if rs.unlock != nil {
				rs.unlock()
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

func requestSessionOf(r *http.Request) *requestSession {
	rs, _ := r.Context().Value(requestSessionKey{}).(*requestSession)
	if rs == nil {
		rs = &requestSession{}
	}
	return rs
}

// sessionWriter saves the request's session at the first header or byte.
type sessionWriter struct {
	http.ResponseWriter
	s     *Server
	rs    *requestSession
	saved bool
}

func (sw *sessionWriter) save() {
	if sw.saved {
		return
	}
	sw.saved = true
	se := sw.rs.se
	if se == nil {
		return
	}
	b, err := sw.s.sealSession(se)
	if err == nil {
		err = sw.s.Sessions.PutSession(se.id, se.user, b, se.expires)
	}
	if err != nil {
		// The browser's next step finds the session as it was before;
		// nothing is lost that the store holds.
		sw.s.Log.Error("keep a session of the user's own pages", "user", se.user, "err", err)
	}
}

func (sw *sessionWriter) WriteHeader(code int) {
	sw.save()
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *sessionWriter) Write(b []byte) (int, error) {
	sw.save()
	return sw.ResponseWriter.Write(b)
}

func (sw *sessionWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// startSession makes a session, sets its cookie, and reports whether it
// could.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, se *session, life time.Duration) bool {
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	se.id = sha256.Sum256([]byte(id))
	se.expires = s.Now().Add(life)
	data, err := s.sealSession(se)
	if err == nil {
		err = s.Sessions.PutSession(se.id, se.user, data, se.expires)
	}
	if err != nil {
		s.Log.Warn("refused a new session of the user's own pages", "err", err)
		return false
	}
	requestSessionOf(r).se = se
	// Secure even over plain HTTP: browsers keep it on loopback, and
	// otpgate's pages belong behind TLS anyway.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(life / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	return true
}

// session returns the request's live session of kind, or nil.
func (s *Server) session(r *http.Request, kind string) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) != 32 {
		return nil
	}
	id := sha256.Sum256([]byte(c.Value))
	if rs, ok := r.Context().Value(requestSessionKey{}).(*requestSession); ok {
		rs.lock(&s.locks, id) // released when keepSessions ends the request
	}
	b, ok, err := s.Sessions.Session(id)
	if err != nil {
		s.Log.Error("read a session of the user's own pages", "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	se, err := s.openSession(id, b)
	if err != nil {
		s.Log.Warn("a session of the user's own pages does not open", "err", err)
		return nil
	}
	if !s.Now().Before(se.expires) {
		s.Sessions.DeleteSession(id)
		return nil
	}
	if se.kind != kind {
		return nil
	}
	requestSessionOf(r).se = se
	return se
}

// endSession ends the request's session and clears its cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	rs := requestSessionOf(r)
	if c, err := r.Cookie(sessionCookie); err == nil {
		id := sha256.Sum256([]byte(c.Value))
		if rs.se != nil && rs.se.id == id {
			rs.se = nil
		}
		if err := s.Sessions.DeleteSession(id); err != nil {
			s.Log.Error("end a session of the user's own pages", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// endSessionsOf ends every session of user, on every node.
func (s *Server) endSessionsOf(r *http.Request, user string) {
	if rs := requestSessionOf(r); rs.se != nil && rs.se.user == user {
		rs.se = nil
	}
	if err := s.Sessions.DeleteSessionsOf(user); err != nil {
		s.Log.Error("end the sessions of a user", "user", user, "err", err)
	}
}

// memSessions are the sessions of a single node, in its memory: a
// restart ends them.
type memSessions struct {
	mu   sync.Mutex
	byID map[[32]byte]memSession
	now  func() time.Time
}

type memSession struct {
	user    string
	data    []byte
	expires time.Time
}

func newMemSessions(now func() time.Time) *memSessions {
	return &memSessions{byID: map[[32]byte]memSession{}, now: now}
}

var errTooManySessions = errors.New("too many sessions of the user's own pages")

func (m *memSessions) PutSession(id [32]byte, user string, data []byte, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[id]; !ok && len(m.byID) >= maxSessions {
		now := m.now()
		for k, v := range m.byID {
			if !now.Before(v.expires) {
				delete(m.byID, k)
			}
		}
		if len(m.byID) >= maxSessions {
			return errTooManySessions
		}
	}
	m.byID[id] = memSession{user: user, data: data, expires: expires}
	return nil
}

func (m *memSessions) Session(id [32]byte) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.byID[id]
	return v.data, ok, nil
}

func (m *memSessions) DeleteSession(id [32]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byID, id)
	return nil
}

func (m *memSessions) DeleteSessionsOf(user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.byID {
		if v.user == user {
			delete(m.byID, k)
		}
	}
	return nil
}
