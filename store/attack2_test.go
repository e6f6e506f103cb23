package store_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/store"
)

// TestConformClaimNotWrittenByConflict: an answer's commit that finds the
// user changed (ErrConflict) has written nothing, its claim neither, so
// the answer judged again claims the State then; one whose claim is taken
// as well commits nothing either: etcd says ErrClaimed at once, bbolt
// ErrConflict first (its answer is judged again, then told ErrClaimed).
func TestConformClaimNotWrittenByConflict(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		a, b := e.node(t, 0), e.node(t, 1)
		mustUpdate(t, a, func(tx *store.Tx) error {
			return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}})
		})
		until := time.Now().Add(time.Minute)
		claim := func(id string) func(*store.Tx) error {
			return func(tx *store.Tx) error { return tx.Claim(store.Claim{User: "alice", ID: id, Until: until}) }
		}
		stale := waitRead(t, b, "alice", func(store.Read) bool { return true })
		mustUpdate(t, a, func(tx *store.Tx) error {
			return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{2}, LastStep: 10}})
		})
		fresh := waitRead(t, b, "alice", func(r store.Read) bool { return r.User.TOTP.Sealed[0] == 2 })
		if err := b.CommitIf(stale, claim("c1")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CommitIf on a changed user: got %v, want ErrConflict", err)
		}
		if err := b.CommitIf(fresh, claim("c1")); err != nil {
			t.Fatalf("judged again: got %v, want the claim made (the conflicted commit wrote it?)", err)
		}
		if err := a.CommitIf(stale, claim("c1")); !errors.Is(err, store.ErrClaimed) && !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CommitIf on a changed user and a claimed State: got %v, want ErrClaimed or ErrConflict", err)
		}
		fresh = waitRead(t, a, "alice", func(r store.Read) bool { return r.User.TOTP.Sealed[0] == 2 })
		if err := a.CommitIf(fresh, claim("c1")); !errors.Is(err, store.ErrClaimed) {
			t.Fatalf("judged again on a claimed State: got %v, want ErrClaimed", err)
		}
	})
}

// lossyProxy forwards TCP to an etcd member; while dropping, whatever the
// member answers is thrown away, and after a while the connections are
// cut: requests sent meanwhile take effect, their answers are lost.
type lossyProxy struct {
	ln       net.Listener
	to       string
	dropping atomic.Bool
	dropped  chan struct{} // gets a value each time an answer is dropped
	mu       sync.Mutex
	conns    []net.Conn
}

func newLossyProxy(t *testing.T, to string) *lossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{ln: ln, to: strings.TrimPrefix(to, "http://"), dropped: make(chan struct{}, 1)}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 && p.dropping.Load() {
						select {
						case p.dropped <- struct{}{}:
						default:
						}
					} else if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	return p
}

func (p *lossyProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *lossyProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestLostCommitAnswerClaimsOnce: an answer's commit (a claim and a TOTP
// step) that etcd applies but whose answer is lost is sent again, and the
// second try finds the State claimed or the user's key changed: the
// caller is told ErrClaimed or ErrConflict (the answer is refused or
// judged again, a lost Accept), never success twice; the claim and the
// step are there once.
func TestLostCommitAnswerClaimsOnce(t *testing.T) {
	ends := etcdtest.Shared(t)
	prefix := testPrefix(t)
	a := openEtcdNode(t, ends, prefix, "a")
	p := newLossyProxy(t, ends[0])
	b := openEtcdNode(t, []string{p.url()}, prefix, "b")
	mustUpdate(t, a, func(tx *store.Tx) error {
		return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}})
	})
	until := time.Now().Add(time.Minute)
	for round := range 3 {
		id := fmt.Sprintf("lost%d", round)
		step := int64(11 + round)
		r := waitRead(t, b, "alice", func(r store.Read) bool { return r.User.TOTP.LastStep == step-1 })
		p.dropping.Store(true)
		go func() {
			<-p.dropped // an answer is lost: the client must try again
			p.cut()
			p.dropping.Store(false)
		}()
		err := b.CommitIf(r, func(tx *store.Tx) error {
			if err := tx.Claim(store.Claim{User: "alice", ID: id, Until: until}); err != nil {
				return err
			}
			return tx.UseStep("alice", step, epoch.Add(time.Hour))
		})
		if err == nil {
			t.Logf("round %d: the answer came through (what the lost window held was the lease grant, not the commit)", round)
		} else if !errors.Is(err, store.ErrClaimed) && !errors.Is(err, store.ErrConflict) {
			// With etcd the claim is in the user's steps key: the try again
			// finds it changed (ErrConflict), and the answer judged again
			// finds the State claimed (below).
			t.Fatalf("round %d: got %v, want ErrClaimed or ErrConflict (the first try took effect unseen)", round, err)
		} else {
			t.Logf("round %d: the answer lost: told %v", round, err)
		}
		if err := a.Update(func(tx *store.Tx) error { return tx.Claim(store.Claim{User: "alice", ID: id, Until: until}) }); !errors.Is(err, store.ErrClaimed) {
			t.Fatalf("round %d: the State claimed again elsewhere: got %v, want ErrClaimed", round, err)
		}
		waitRead(t, a, "alice", func(r store.Read) bool { return r.User.TOTP.LastStep == step })
	}
}
