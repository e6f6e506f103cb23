package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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

// maxSessions bounds the sessions held; past it the expired go, and when
// none has, no new one is made (fail closed).
const maxSessions = 10000

// session is one browser's way through the user's own pages, held in
// memory only: a restart ends it, and nothing of it is in the page but
// its id, in an HttpOnly cookie.
type session struct {
	mu      sync.Mutex // held while a request of its browser runs
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

// sessions are the live sessions by the hash of their id.
type sessions struct {
	mu   sync.Mutex
	byID map[[32]byte]*session
}

// start makes a session, sets its cookie, and returns it.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, se *session, life time.Duration) bool {
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	now := s.Now()
	se.expires = now.Add(life)
	s.sessions.mu.Lock()
	if len(s.sessions.byID) >= maxSessions {
		for k, v := range s.sessions.byID {
			if !now.Before(v.expires) {
				delete(s.sessions.byID, k)
			}
		}
	}
	full := len(s.sessions.byID) >= maxSessions
	if !full {
		s.sessions.byID[sha256.Sum256([]byte(id))] = se
	}
	s.sessions.mu.Unlock()
	if full {
		s.Log.Warn("too many sessions of the user's own pages; refused a new one")
		return false
	}
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
	key := sha256.Sum256([]byte(c.Value))
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	se := s.sessions.byID[key]
	if se == nil {
		return nil
	}
	if !s.Now().Before(se.expires) {
		delete(s.sessions.byID, key)
		return nil
	}
	if se.kind != kind {
		return nil
	}
	return se
}

// endSession ends the request's session and clears its cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.mu.Lock()
		delete(s.sessions.byID, sha256.Sum256([]byte(c.Value)))
		s.sessions.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// endSessionsOf ends every session of user.
func (s *Server) endSessionsOf(user string) {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	for k, v := range s.sessions.byID {
		if v.user == user {
			delete(s.sessions.byID, k)
		}
	}
}
