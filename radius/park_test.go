package radius

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
)

// parkingHandler parks requests from user "held" until the test releases
// them, and answers everyone else at once.
type parkingHandler struct {
	parked  chan struct{} // one per parked request
	release chan *Response
}

func (p *parkingHandler) ServeRADIUS(ctx context.Context, r *Request) *Response {
	if string(r.Get(typeUserName)) != "held" {
		return &Response{Code: radius.CodeAccessAccept, Attributes: radius.Attributes{avp(typeReplyMessage, "at once")}}
	}
	p.parked <- struct{}{}
	return &Response{Later: func() *Response { return <-p.release }}
}

// TestServerParked: a parked request frees its worker (with one worker,
// other requests are still answered), its retransmissions are dropped as
// in progress, and its answer, when it comes, is encoded like any other
// (Message-Authenticator, Response Authenticator, the Proxy-States in
// order) and cached for later retransmissions.
func TestServerParked(t *testing.T) {
	c := loopbackClient(t, "127.0.0.1:0")
	ph := &parkingHandler{parked: make(chan struct{}, 4), release: make(chan *Response)}
	h := startServer(t, "127.0.0.1:0", &Server{Handler: ph, Clients: NewClients([]*Client{c}), MaxConcurrent: 1})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() { // nobody is left waiting when the test ends early
		<-stop
		for {
			select {
			case ph.release <- nil:
			case <-time.After(time.Second):
				return
			}
		}
	}()

	held := radius.New(radius.CodeAccessRequest, c.Secret)
	held.Add(typeProxyState, radius.Attribute("nps-1"))
	held.Add(typeUserName, radius.Attribute("held"))
	held.Add(typeProxyState, radius.Attribute("nps-2"))
	heldWire := signRequest(t, held, c.Secret)
	conn := dial(t, h.addr)
	send(t, conn, heldWire)
	select {
	case <-ph.parked:
	case <-time.After(answerWait):
		t.Fatal("the request was not parked")
	}

	for i := range 3 { // the only worker is free for others
		other, otherWire := newSignedRequest(t, "alice")
		resp, err := exchange(h.addr, other, answerWait)
		if err != nil {
			t.Fatalf("request %d while one is parked: got %v, want an answer", i, err)
		}
		checkAnswer(t, wireOf(t, resp), otherWire, c.Secret)
	}
	send(t, conn, heldWire) // the gateway retransmits during the hold
	h.waitDrop(t, "duplicate_in_progress")

	ph.release <- &Response{Code: radius.CodeAccessAccept, Attributes: radius.Attributes{avp(typeReplyMessage, "approved")}}
	answer := recv(t, conn, answerWait)
	if answer == nil {
		t.Fatal("the parked request got no answer")
	}
	checkAnswer(t, answer, heldWire, c.Secret)
	p, err := radius.Parse(answer, c.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if p.Code != radius.CodeAccessAccept || string(p.Get(typeReplyMessage)) != "approved" {
		t.Errorf("got %v %q, want Access-Accept \"approved\"", p.Code, p.Get(typeReplyMessage))
	}
	if got, want := values(p.Attributes, typeProxyState), []string{"nps-1", "nps-2"}; !slices.Equal(got, want) {
		t.Errorf("Proxy-State: got %q, want %q", got, want)
	}
	if extra := recv(t, conn, noAnswerWait); extra != nil {
		t.Errorf("got a second answer %x, want one for the request and its copy", extra)
	}
	if got := roundTrip(t, conn, heldWire); !bytes.Equal(got, answer) {
		t.Errorf("retransmission after the answer: got %x, want the cached %x", got, answer)
	}
	if got := h.srv.Retransmissions(); got != 1 {
		t.Errorf("Retransmissions: got %d, want 1", got)
	}
	h.wantDropped(t, map[string]uint64{"duplicate_in_progress": 1})
}

// TestServerParkedNoAnswer: a parked request whose Later gives no answer,
// or panics, is answered with nothing and forgotten, so its
// retransmission is decided afresh.
func TestServerParkedNoAnswer(t *testing.T) {
	for _, tt := range []struct {
		name  string
		later func() *Response
		drops map[string]uint64
	}{
		{"nil", func() *Response { return nil }, nil},
		{"panic", func() *Response { panic("boom") }, map[string]uint64{"panic": 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := loopbackClient(t, "127.0.0.1:0")
			var mu sync.Mutex
			calls := 0
			h := startServer(t, "127.0.0.1:0", &Server{Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
				mu.Lock()
				defer mu.Unlock()
				if calls++; calls == 1 {
					return &Response{Later: tt.later}
				}
				return &Response{Code: radius.CodeAccessReject}
			}), Clients: NewClients([]*Client{c})})
			conn := dial(t, h.addr)
			b := signRequest(t, testRequest(5, avp(typeUserName, "held")), c.Secret)
			send(t, conn, b)
			if got := recv(t, conn, noAnswerWait); got != nil {
				t.Fatalf("got an answer %x, want none", got)
			}
			checkAnswer(t, roundTrip(t, conn, b), b, c.Secret)
			h.wantDropped(t, tt.drops)
		})
	}
}

// TestServerDrainParked: Serve returns only after its parked requests are
// answered.
func TestServerDrainParked(t *testing.T) {
	c := loopbackClient(t, "127.0.0.1:0")
	ph := &parkingHandler{parked: make(chan struct{}, 1), release: make(chan *Response, 1)}
	h := startServer(t, "127.0.0.1:0", &Server{Handler: ph, Clients: NewClients([]*Client{c})})
	t.Cleanup(func() {
		select {
		case ph.release <- nil:
		default:
		}
	})
	conn := dial(t, h.addr)
	b := signRequest(t, testRequest(7, avp(typeUserName, "held")), c.Secret)
	send(t, conn, b)
	select {
	case <-ph.parked:
	case <-time.After(answerWait):
		t.Fatal("the request was not parked")
	}
	h.stop()
	select {
	case <-h.done:
		t.Fatalf("Serve returned (%v) with a request parked", h.err)
	case <-time.After(noAnswerWait):
	}
	ph.release <- &Response{Code: radius.CodeAccessReject}
	checkAnswer(t, recv(t, conn, answerWait), b, c.Secret)
	select {
	case <-h.done:
	case <-time.After(answerWait):
		t.Fatal("Serve did not return after the parked request was answered")
	}
}
