package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/otp"
)

// officeIP is in the tenant's office network; outsideIP is not.
const officeIP, outsideIP, outsideIP1 = "10.1.2.3", "203.0.113.%d", "203.0.113.1"

// acceptOp is one Access-Request that must be accepted: user/pw from ip.
func acceptOp(user, ip string) op {
	return func(c *conn) error {
		p, err := c.exchange(user, "pw", ip, nil)
		if err != nil {
			return err
		}
		return expect(p, radius.CodeAccessAccept, "accept")
	}
}

// totpPool hands out TOTP users so that none is used twice in one 30 s
// step, since otpgate accepts each step's code once per user: every step
// the pool starts over at user 0. A flow that finds every user used this
// step waits for the next step (and is counted: a valid run has none).
type totpPool struct {
	users int
	// codeAtAnswer gives the code of the step the answer is sent in
	// rather than the one the user was taken in: rlm_totp takes only the
	// current step's code, where otpgate also takes its neighbours'.
	codeAtAnswer bool

	mu    sync.Mutex
	step  int64  // the step being handed out
	next  int    // the next user for it
	code  string // its code
	waits int    // flows that had to wait for the next step

	nowStep int64  // the step of nowCode, for codeAtAnswer
	nowCode string //
}

// take returns an unused user for this step and the step's code.
func (p *totpPool) take(ctx context.Context) (int, string, error) {
	for {
		step := otp.Step(time.Now())
		p.mu.Lock()
		if step != p.step {
			code, err := otp.TOTPCode(totpSecret, time.Unix(step*int64(otp.Period/time.Second), 0))
			if err != nil {
				p.mu.Unlock()
				return 0, "", err
			}
			p.step, p.next, p.code = step, 0, code
		}
		if p.next < p.users {
			i, code := p.next, p.code
			p.next++
			p.mu.Unlock()
			return i, code, nil
		}
		p.waits++
		p.mu.Unlock()
		sleepUntil(ctx, time.Unix((step+1)*int64(otp.Period/time.Second), 0))
		if err := ctx.Err(); err != nil {
			return 0, "", err
		}
	}
}

// current is the code of the step now.
func (p *totpPool) current() (string, error) {
	step := otp.Step(time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	if step != p.nowStep {
		code, err := otp.TOTPCode(totpSecret, time.Unix(step*int64(otp.Period/time.Second), 0))
		if err != nil {
			return "", err
		}
		p.nowStep, p.nowCode = step, code
	}
	return p.nowCode, nil
}

// waited is how many flows had to wait for a new step.
func (p *totpPool) waited() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waits
}

// flow is a TOTP login: Access-Request from outside the office →
// Access-Challenge with State → Access-Request with the code and the
// State → Access-Accept. The code is the one for the step the user was
// taken in, so the flow is right even when it straddles two steps.
func (p *totpPool) flow(ctx context.Context, loop int) op {
	ip := fmt.Sprintf(outsideIP, loop%250+1)
	return func(c *conn) error {
		i, code, err := p.take(ctx)
		if err != nil {
			return err
		}
		return twoRounds(c, totpName(i), ip, func() (string, error) {
			if p.codeAtAnswer {
				return p.current()
			}
			return code, nil
		})
	}
}

// codePool hands out sent-code users round robin, so that each gets few
// codes an hour as a real user would (a user's send list is read and
// rewritten with each code) and no two flows share a user at once.
type codePool struct {
	users int
	box   *codeBox
	next  atomic.Int64
}

// flow is a login with a code sent by SMS through the console provider:
// Access-Request → Access-Challenge (the code is written to otpgate's log,
// which the bench reads) → Access-Request with the code → Access-Accept.
func (p *codePool) flow(loop int, timeout time.Duration) op {
	ip := fmt.Sprintf(outsideIP, loop%250+1)
	return func(c *conn) error {
		i := int((p.next.Add(1) - 1) % int64(p.users))
		p.box.forget(i)
		return twoRounds(c, codeName(i), ip, func() (string, error) {
			code, err := p.box.wait(i, timeout)
			if err != nil {
				return "", fmt.Errorf("no code for %s in the log within %s", codeName(i), timeout)
			}
			return code, nil
		})
	}
}

// twoRounds logs user in from ip and answers the challenge with code().
func twoRounds(c *conn, user, ip string, code func() (string, error)) error {
	p, err := c.exchange(user, "pw", ip, nil)
	if err != nil {
		return err
	}
	if err := expect(p, radius.CodeAccessChallenge, "login"); err != nil {
		return err
	}
	answer, err := code()
	if err != nil {
		return err
	}
	p, err = c.exchange(user, answer, ip, rfc2865.State_Get(p))
	if err != nil {
		return err
	}
	return expect(p, radius.CodeAccessAccept, "answer")
}

// crashCheck is what became of a code accepted just before otpgate was
// killed (SIGKILL, no chance to flush anything), tried again by the same
// user after it restarted on the same store.
type crashCheck struct {
	accepted bool   // the code was accepted before the crash
	refused  bool   // and not accepted after it
	reason   string // what otpgate said the second time
	og       *otpgate
}

// replayAfterCrash runs that check on og, which it kills; the restarted
// server it returns in crashCheck.og takes og's place.
func replayAfterCrash(ctx context.Context, og *otpgate, pool *totpPool, bin, dir, logLevel string, box *codeBox, env []string, toFile bool) (crashCheck, error) {
	var cc crashCheck
	i, code, err := pool.take(ctx)
	if err != nil {
		return cc, err
	}
	user := totpName(i)
	try := func(addr string) (*radius.Packet, error) {
		c, err := dial(addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		defer c.close()
		p, err := c.exchange(user, "pw", outsideIP1, nil)
		if err != nil {
			return nil, err
		}
		if err := expect(p, radius.CodeAccessChallenge, "login"); err != nil {
			return nil, err
		}
		return c.exchange(user, code, outsideIP1, rfc2865.State_Get(p))
	}
	p, err := try(og.addr)
	if err != nil {
		return cc, err
	}
	cc.accepted = p.Code == radius.CodeAccessAccept
	og.crash()
	if cc.og, err = startOtpgate(bin, dir, logLevel, box, env, toFile); err != nil {
		return cc, fmt.Errorf("restart after the crash: %w", err)
	}
	if p, err = try(cc.og.addr); err != nil {
		return cc, err
	}
	cc.refused = p.Code != radius.CodeAccessAccept // a Reject, or a challenge to try another code
	cc.reason = fmt.Sprintf("%s %q", p.Code, rfc2865.ReplyMessage_GetString(p))
	return cc, nil
}
