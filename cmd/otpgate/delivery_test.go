package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/mail/mailtest"
)

// smsAPI is an SMS provider's HTTP API, played by an httptest.Server in
// one of two shapes: "json" (a key in a header, a JSON body, like
// MessageBird) or "form" (basic auth and a form, like Twilio).
type smsAPI struct {
	srv   *httptest.Server
	shape string
	fail  atomic.Bool // answer 500, like a provider that is down

	mu   sync.Mutex
	sent []smsSent
}

type smsSent struct{ to, text string }

func newSMSAPI(t *testing.T, shape string) *smsAPI {
	a := &smsAPI{shape: shape}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *smsAPI) serve(w http.ResponseWriter, r *http.Request) {
	if a.fail.Load() {
		http.Error(w, "service unavailable", http.StatusInternalServerError)
		return
	}
	var m smsSent
	switch a.shape {
	case "json":
		if r.URL.Path != "/messages" || r.Header.Get("Authorization") != "AccessKey test-key" ||
			r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusUnauthorized)
			return
		}
		var body struct {
			Recipients []string `json:"recipients"`
			Originator string   `json:"originator"`
			Body       string   `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Recipients) != 1 || body.Originator != "Acme" {
			http.Error(w, "bad body", http.StatusUnprocessableEntity)
			return
		}
		m = smsSent{to: "+" + body.Recipients[0], text: body.Body}
	case "form":
		user, pass, ok := r.BasicAuth()
		if r.URL.Path != "/Accounts/AC1/Messages.json" || !ok || user != "AC1" || pass != "test-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("From") != "Acme" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		m = smsSent{to: r.PostForm.Get("To"), text: r.PostForm.Get("Body")}
	}
	a.mu.Lock()
	a.sent = append(a.sent, m)
	a.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	fmt.Fprint(w, `{"id":"x"}`)
}

func (a *smsAPI) messages() []smsSent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]smsSent(nil), a.sent...)
}

// lastCode is the code in the newest message, which ends with it.
func (a *smsAPI) lastCode(t *testing.T) string {
	t.Helper()
	ms := a.messages()
	if len(ms) == 0 {
		t.Fatal("no SMS was sent")
	}
	text := ms[len(ms)-1].text
	return text[strings.LastIndexByte(text, ' ')+1:]
}

// deliveryWorld is a server with two SMS APIs and an SMTP server.
type deliveryWorld struct {
	*server
	bird, twilio *smsAPI
	mail         *mailbox
	clock        *clock
}

// startDelivery starts otpgate with SMS through bird then twilio and
// e-mail through an SMTP server; limits is the tenant's limits block.
func startDelivery(t *testing.T, limits string) *deliveryWorld {
	w := &deliveryWorld{bird: newSMSAPI(t, "json"), twilio: newSMSAPI(t, "form"), mail: newMailbox(t), clock: newClock()}
	config := fmt.Sprintf(`
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: guacamole, address: 127.0.0.1/32, secret: testing123, tenant: acme,
     client_ip_attribute: Calling-Station-Id}
tenants:
  - name: acme
    mode: required
    methods: [totp, sms, email]
    country_code: "31"
    code_ttl: 3m
    resend_cooldown: 30s
    limits: %s
delivery:
  providers:
    - name: bird
      type: http
      timeout: 2s
      http:
        url: "%s/messages"
        headers: ["Authorization: AccessKey test-key"]
        body: '{"recipients":["{{slice .To 1}}"],"originator":"Acme","body":{{json .Text}}}'
        content_type: application/json
        success: [201]
    - name: twilio
      type: http
      timeout: 2s
      http:
        url: "%s/Accounts/AC1/Messages.json"
        username: AC1
        password: test-token
        params: ["To={{.To}}", "From=Acme", "Body={{.Text}}"]
        success: [201]
    - name: mail
      type: smtp
      timeout: 5s
%s
  sms: [bird, twilio]
  email: [mail]
`, limits, w.bird.srv.URL, w.twilio.srv.URL, w.mail.config("      "))
	w.server = startServerAt(t, config, w.clock.Now)
	return w
}

// login sends a new Access-Request for user from the end-user IP ip.
func (w *deliveryWorld) login(t *testing.T, user, ip string) *radius.Packet {
	t.Helper()
	return mustExchange(t, w.addrs[0], request{user: user, password: "pw", callingStation: ip})
}

// answer answers the challenge ch.
func (w *deliveryWorld) answer(t *testing.T, user, ip, text string, ch *radius.Packet) *radius.Packet {
	t.Helper()
	return mustExchange(t, w.addrs[0], request{user: user, password: text, callingStation: ip, state: string(rfc2865.State_Get(ch))})
}

// auditReasons lists the reasons and providers in the audit log, oldest first.
func (w *deliveryWorld) auditReasons(t *testing.T) []string {
	t.Helper()
	out := w.cli(t, "audit", "--json", "--limit", "0")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct{ Decision, Reason, Provider string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		if e.Decision == "admin" { // the test's own user add
			continue
		}
		lines = append(lines, strings.TrimSuffix(e.Reason+" "+e.Provider, " "))
	}
	return lines
}

const noLimits = "{}"

func TestDeliverySMS(t *testing.T) {
	w := startDelivery(t, noLimits)
	// A national number takes the tenant's country code.
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "06 1234 5678")

	ch := w.login(t, "hank", "203.0.113.9")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	sent := w.bird.messages()
	if len(sent) != 1 || sent[0].to != "+31612345678" || !strings.HasPrefix(sent[0].text, "Your login code is ") {
		t.Fatalf("bird got %+v, want one code to +31612345678", sent)
	}
	code := w.bird.lastCode(t)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	again := w.answer(t, "hank", "203.0.113.9", wrong, ch)
	expect(t, again, radius.CodeAccessChallenge, "Wrong code, 2 tries left")
	expect(t, w.answer(t, "hank", "203.0.113.9", code, again), radius.CodeAccessAccept, "")

	got := strings.Join(w.auditReasons(t), ", ")
	if want := "challenge bird, wrong_code, code_ok"; got != want {
		t.Errorf("audit: got %q, want %q", got, want)
	}
	if n := len(w.twilio.messages()); n != 0 {
		t.Errorf("twilio got %d messages, want 0 while bird works", n)
	}
}

func TestDeliveryExpired(t *testing.T) {
	w := startDelivery(t, noLimits)
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "+31612345678")
	ch := w.login(t, "hank", "203.0.113.9")
	w.clock.Advance(3*time.Minute + time.Second)
	expect(t, w.answer(t, "hank", "203.0.113.9", w.bird.lastCode(t), ch), radius.CodeAccessReject,
		"Your code has expired. Please log in again.")
}

func TestDeliveryResend(t *testing.T) {
	w := startDelivery(t, noLimits)
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "+31612345678")
	ch := w.login(t, "hank", "203.0.113.9")

	w.clock.Advance(10 * time.Second)
	ch = w.answer(t, "hank", "203.0.113.9", "resend", ch)
	expect(t, ch, radius.CodeAccessChallenge,
		"Please wait 20 seconds before asking for a new code. Enter the code sent to +31 6*****78 (or type resend)")
	if n := len(w.bird.messages()); n != 1 {
		t.Fatalf("got %d messages after a resend within the cool-down, want 1", n)
	}

	w.clock.Advance(25 * time.Second)
	ch = w.answer(t, "hank", "203.0.113.9", "resend", ch)
	expect(t, ch, radius.CodeAccessChallenge, "A new code was sent to +31 6*****78")
	if n := len(w.bird.messages()); n != 2 {
		t.Fatalf("got %d messages after a resend past the cool-down, want 2", n)
	}
	expect(t, w.answer(t, "hank", "203.0.113.9", w.bird.lastCode(t), ch), radius.CodeAccessAccept, "")
}

func TestDeliverySwitchToEmail(t *testing.T) {
	w := startDelivery(t, noLimits)
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "+31612345678", "--email", "hank@example.com")
	ch := w.login(t, "hank", "203.0.113.9")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")

	ch = w.answer(t, "hank", "203.0.113.9", "email", ch)
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to h***@example.com (or type resend)")
	code := w.mail.code(t, "hank@example.com")
	expect(t, w.answer(t, "hank", "203.0.113.9", code, ch), radius.CodeAccessAccept, "")
	if n := len(w.bird.messages()); n != 1 {
		t.Errorf("got %d SMS, want only the first", n)
	}
}

func TestDeliveryFailover(t *testing.T) {
	w := startDelivery(t, noLimits)
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "+31612345678", "--email", "hank@example.com",
		"--method", "sms", "--backup-method", "email")

	// The first SMS provider is down: the second sends.
	w.bird.fail.Store(true)
	ch := w.login(t, "hank", "203.0.113.9")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	if n := len(w.twilio.messages()); n != 1 {
		t.Fatalf("twilio got %d messages, want 1", n)
	}
	expect(t, w.answer(t, "hank", "203.0.113.9", w.twilio.lastCode(t), ch), radius.CodeAccessAccept, "")

	// Both are down: the backup method is used, and the prompt says so.
	w.twilio.fail.Store(true)
	ch = w.login(t, "hank", "203.0.113.10")
	expect(t, ch, radius.CodeAccessChallenge, "Sending by SMS failed. Enter the code sent to h***@example.com (or type resend)")
	expect(t, w.answer(t, "hank", "203.0.113.10", w.mail.code(t, "hank@example.com"), ch), radius.CodeAccessAccept, "")

	got := strings.Join(w.auditReasons(t), ", ")
	if want := "challenge twilio, code_ok, challenge_backup mail, code_ok"; got != want {
		t.Errorf("audit: got %q, want %q", got, want)
	}
}

func TestDeliveryHourlyLimit(t *testing.T) {
	w := startDelivery(t, "{sends_per_user_per_hour: 2}")
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "+31612345678")
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		expect(t, w.login(t, "hank", ip), radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	}
	expect(t, w.login(t, "hank", "203.0.113.3"), radius.CodeAccessReject, "Too many codes were requested. Please try again later.")
	if n := len(w.bird.messages()); n != 2 {
		t.Errorf("got %d messages, want 2", n)
	}
	reasons := w.auditReasons(t)
	if got := reasons[len(reasons)-1]; got != "limit_user_hour" {
		t.Errorf("audit: got %q last, want limit_user_hour", got)
	}

	// The limit lives in the store: a restart does not reset it.
	w.stop(t)
	w.start(t)
	expect(t, w.login(t, "hank", "203.0.113.4"), radius.CodeAccessReject, "Too many codes were requested. Please try again later.")
	w.clock.Advance(time.Hour)
	expect(t, w.login(t, "hank", "203.0.113.4"), radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	if n := len(w.bird.messages()); n != 3 {
		t.Errorf("got %d messages, want 3", n)
	}
}

func TestDeliveryOneMessagePerLogin(t *testing.T) {
	w := startDelivery(t, noLimits)
	w.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "+31612345678")
	req := request{user: "hank", password: "pw", callingStation: "203.0.113.9"}
	raw := encodeRequest(t, req)
	first, firstRaw, err := sendRaw(t, w.addrs[0], "", raw, "")
	if err != nil {
		t.Fatal(err)
	}
	// The gateway retransmits the same packet ...
	_, againRaw, err := sendRaw(t, w.addrs[0], "", raw, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(firstRaw, againRaw) {
		t.Errorf("the retransmission got a different answer")
	}
	// ... and the user, impatient, logs in again.
	second := w.login(t, "hank", "203.0.113.9")
	expect(t, second, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	if !bytes.Equal(rfc2865.State_Get(first), rfc2865.State_Get(second)) {
		t.Errorf("the repeated login got a new challenge, want the live one")
	}
	if n := len(w.bird.messages()); n != 1 {
		t.Errorf("got %d messages, want exactly 1", n)
	}
	expect(t, w.answer(t, "hank", "203.0.113.9", w.bird.lastCode(t), second), radius.CodeAccessAccept, "")
}

// mailbox is an SMTP server with STARTTLS and AUTH that otpgate mails
// codes to.
type mailbox struct {
	srv    *mailtest.Server
	caFile string
}

func newMailbox(t *testing.T) *mailbox {
	srv := mailtest.NewServer(t, mailtest.Options{TLS: "starttls", Username: "otpgate", Password: "mail-pass"})
	ca := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return &mailbox{srv: srv, caFile: ca}
}

// config is the smtp block of a provider, indented.
func (m *mailbox) config(indent string) string {
	lines := []string{
		"smtp:",
		fmt.Sprintf("  host: %s", m.srv.Host()),
		fmt.Sprintf("  port: %d", m.srv.Port()),
		"  tls: starttls",
		"  ca_file: " + m.caFile,
		"  username: otpgate",
		"  password: mail-pass",
		`  from: "Acme <otp@acme.example>"`,
	}
	return indent + strings.Join(lines, "\n"+indent)
}

// code waits for the next message, checks it is to rcpt, and returns the
// code in its body.
func (m *mailbox) code(t *testing.T, rcpt string) string {
	t.Helper()
	r := m.srv.Next(t)
	if len(r.To) != 1 || r.To[0] != rcpt || !r.TLS || r.Auth != "otpgate" {
		t.Fatalf("got mail %+v, want one to %s over TLS after AUTH", r, rcpt)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	const lead = "Your login code is "
	i := strings.Index(string(body), lead)
	if i < 0 {
		t.Fatalf("no code in the mail:\n%s", body)
	}
	return strings.Fields(string(body[i+len(lead):]))[0]
}
