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

	mu    sync.Mutex
	step  int64  // the step being handed out
	next  int    // the next user for it
	code  string // its code
	waits int    // flows that had to wait for the next step
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
		return twoRounds(c, totpName(i), ip, func() (string, error) { return code, nil })
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
