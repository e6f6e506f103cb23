package web

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/otpgate/otpgate/policy"
)

// page is what one render needs.
type page struct {
	T text
	// Title is the page's <title> and heading; empty means T.Title.
	Title    string
	Approval *policy.Approval
	// When is the approval's time, in its tenant's zone.
	When string
	// Gateway is the approval's gateway as users know it.
	Gateway string
	SignIn  bool
	// AskPassword puts a password field in the sign-in form's first step.
	AskPassword bool
	// To is where a sign-in leads: "me" for the user's own page.
	To      string
	Enrol   *enrolView
	Account *accountView
	CSRF    string
	Name    string
	State   string
	Prompt  string
	Error   string
	Done    string
}

// text is a page's words in one language.
type text struct {
	Lang, Title                        string
	ApproveHeading, ApproveIntro       string
	Gateway, From, Machine, When       string
	Approve, Deny                      string
	Approved, Denied, Gone, Forbidden  string
	SignInTitle                        string
	SignInHeading, SignInIntro         string
	Name, Password, Code, Next, SignIn string
	Preapproved, Failed, TooMany       string
	NameNeeded                         string

	EnrolTitle, EnrolIntro, InviteGone, WrongPassword   string
	CurrentIntro, Choose, UseApp, UseSMS                string
	LinkStep1, LinkStep2, LinkStep3, LinkStep4, QRAlt   string
	OpenInApp, AppCode, Confirm, Resend, SixDigits      string
	CodeNeeded, Mobile, MobileHint, SendCode            string
	CodesTitle, CodesIntro, Print, Saved, Continue      string
	TickSaved, EnrolDone                                string
	AccountTitle, AccountIntro, SecondFactor, Recovery  string
	LinkPhone, NewCodes, Places, NoPlaces, Forget       string
	Forgotten, Logins, NoLogins, NotMe, Accepted        string
	Rejected, LockedNotMe, SignOut, SignedOut, Linked   string
	Back, AccountNeedsPassword, ValidUntil, SignInAgain string
}

var catalog = map[string]text{
	"en": {
		Lang: "en", Title: "Approve a login",
		ApproveHeading: "Is this you logging in?",
		ApproveIntro:   "Approve only if you are logging in right now.",
		Gateway:        "To", From: "From", Machine: "Computer", When: "At",
		Approve: "Approve", Deny: "Deny",
		Approved:      "Approved. Your login continues; you can close this page.",
		Denied:        "Denied. The login has been refused.",
		Gone:          "This link has been used or has expired. Log in again to get a new one.",
		Forbidden:     "This form did not come from this page. Open the link again.",
		SignInTitle:   "Sign in",
		SignInHeading: "Sign in", SignInIntro: "Enter a login code here, then log in to the remote desktop within a few minutes.",
		Name: "User name", Password: "Password", Code: "Code", Next: "Next", SignIn: "Sign in",
		Preapproved: "Done. Log in to the remote desktop within the next few minutes.",
		Failed:      "That did not work. Please try again.",
		TooMany:     "Too many attempts. Please wait a minute and try again.",
		NameNeeded:  "Enter your user name.",

		EnrolTitle: "Set up your login codes", EnrolIntro: "Hello {user}. First enter your password.",
		InviteGone:    "This invitation has been used or has expired. Ask your administrator for a new one.",
		WrongPassword: "Wrong password. Please try again.",
		CurrentIntro:  "You already have a way to get login codes. Prove it first: enter a code from it, or one of your recovery codes.",
		Choose:        "How do you want to get your login codes?",
		UseApp:        "Use an authenticator app", UseSMS: "Use text messages (SMS)",
		LinkStep1: "Install an authenticator app on your phone, if you have none (such as Microsoft Authenticator or Google Authenticator).",
		LinkStep2: "In the app, add an account and scan this code:",
		LinkStep3: "Cannot scan? Type this key instead:",
		LinkStep4: "Reading this on your phone?",
		QRAlt:     "QR code to scan with your authenticator app", OpenInApp: "Open in your authenticator app",
		AppCode: "The 6-digit code the app now shows", Confirm: "Confirm", Resend: "Send a new code",
		SixDigits:  "Enter the 6 digits the app shows.",
		CodeNeeded: "Enter the code.", Mobile: "Mobile number", MobileHint: "For example +31 6 12345678", SendCode: "Send me a code",
		CodesTitle: "Your recovery codes",
		CodesIntro: "If you lose your phone, each of these codes lets you log in once instead of a login code. Print them or write them down now: they are not shown again.",
		Print:      "Print", Saved: "I have saved my recovery codes", Continue: "Continue",
		TickSaved:    "Tick the box once you have saved your recovery codes.",
		EnrolDone:    "All set. From now on, enter the code from your phone when you log in.",
		AccountTitle: "Your account", AccountIntro: "Signed in as {user}.",
		SecondFactor: "Login codes", Recovery: "Recovery codes left: {n}",
		LinkPhone: "Link a new phone", NewCodes: "Make new recovery codes",
		Places: "Remembered places", NoPlaces: "No place is remembered.", Forget: "Forget {ip}",
		Forgotten: "That place is forgotten: you will be asked for a code there again.",
		Logins:    "Your recent logins", NoLogins: "No logins yet.", NotMe: "This was not me",
		Accepted: "allowed", Rejected: "refused",
		LockedNotMe: "Your account is now locked, and your administrator has been told. Contact them to unlock it.",
		SignOut:     "Sign out", SignedOut: "You are signed out.", Linked: "Your new phone is linked.",
		Back: "Back", AccountNeedsPassword: "Your own page is not available here.",
		ValidUntil: "This link works until {until}.", SignInAgain: "Sign in again",
	},
	"nl": {
		Lang: "nl", Title: "Aanmelding goedkeuren",
		ApproveHeading: "Meldt u zich nu aan?",
		ApproveIntro:   "Keur alleen goed als u zich op dit moment aanmeldt.",
		Gateway:        "Bij", From: "Vanaf", Machine: "Computer", When: "Om",
		Approve: "Goedkeuren", Deny: "Weigeren",
		Approved:      "Goedgekeurd. Uw aanmelding gaat verder; u kunt deze pagina sluiten.",
		Denied:        "Geweigerd. De aanmelding is afgewezen.",
		Gone:          "Deze link is al gebruikt of verlopen. Meld u opnieuw aan voor een nieuwe link.",
		Forbidden:     "Dit formulier kwam niet van deze pagina. Open de link opnieuw.",
		SignInTitle:   "Aanmelden",
		SignInHeading: "Aanmelden", SignInIntro: "Voer hier een inlogcode in en meld u daarna binnen enkele minuten aan op het externe bureaublad.",
		Name: "Gebruikersnaam", Password: "Wachtwoord", Code: "Code", Next: "Volgende", SignIn: "Aanmelden",
		Preapproved: "Gelukt. Meld u binnen enkele minuten aan op het externe bureaublad.",
		Failed:      "Dat is niet gelukt. Probeer het opnieuw.",
		TooMany:     "Te veel pogingen. Wacht een minuut en probeer het opnieuw.",
		NameNeeded:  "Voer uw gebruikersnaam in.",

		EnrolTitle: "Uw inlogcodes instellen", EnrolIntro: "Hallo {user}. Voer eerst uw wachtwoord in.",
		InviteGone:    "Deze uitnodiging is al gebruikt of verlopen. Vraag uw beheerder om een nieuwe.",
		WrongPassword: "Onjuist wachtwoord. Probeer het opnieuw.",
		CurrentIntro:  "U hebt al een manier om inlogcodes te krijgen. Bevestig die eerst: voer er een code uit in, of een van uw herstelcodes.",
		Choose:        "Hoe wilt u uw inlogcodes krijgen?",
		UseApp:        "Met een authenticator-app", UseSMS: "Per sms",
		LinkStep1: "Installeer een authenticator-app op uw telefoon als u er geen hebt (zoals Microsoft Authenticator of Google Authenticator).",
		LinkStep2: "Voeg in de app een account toe en scan deze code:",
		LinkStep3: "Lukt scannen niet? Typ dan deze sleutel:",
		LinkStep4: "Leest u dit op uw telefoon?",
		QRAlt:     "QR-code om te scannen met uw authenticator-app", OpenInApp: "Openen in uw authenticator-app",
		AppCode: "De code van 6 cijfers die de app nu toont", Confirm: "Bevestigen", Resend: "Stuur een nieuwe code",
		SixDigits:  "Voer de 6 cijfers in die de app toont.",
		CodeNeeded: "Voer de code in.", Mobile: "Mobiel nummer", MobileHint: "Bijvoorbeeld 06 12345678", SendCode: "Stuur mij een code",
		CodesTitle: "Uw herstelcodes",
		CodesIntro: "Raakt u uw telefoon kwijt, dan kunt u met elk van deze codes één keer inloggen in plaats van met een inlogcode. Print ze of schrijf ze nu op: ze worden niet nog eens getoond.",
		Print:      "Printen", Saved: "Ik heb mijn herstelcodes bewaard", Continue: "Doorgaan",
		TickSaved:    "Vink het vakje aan zodra u uw herstelcodes hebt bewaard.",
		EnrolDone:    "Klaar. Voer voortaan bij het inloggen de code van uw telefoon in.",
		AccountTitle: "Uw account", AccountIntro: "Aangemeld als {user}.",
		SecondFactor: "Inlogcodes", Recovery: "Herstelcodes over: {n}",
		LinkPhone: "Een nieuwe telefoon koppelen", NewCodes: "Nieuwe herstelcodes maken",
		Places: "Onthouden plaatsen", NoPlaces: "Er is geen plaats onthouden.", Forget: "{ip} vergeten",
		Forgotten: "Die plaats is vergeten: daar wordt u weer om een code gevraagd.",
		Logins:    "Uw laatste aanmeldingen", NoLogins: "Nog geen aanmeldingen.", NotMe: "Dit was ik niet",
		Accepted: "toegestaan", Rejected: "geweigerd",
		LockedNotMe: "Uw account is nu geblokkeerd en uw beheerder is ingelicht. Neem contact met hem op om het te deblokkeren.",
		SignOut:     "Afmelden", SignedOut: "U bent afgemeld.", Linked: "Uw nieuwe telefoon is gekoppeld.",
		Back: "Terug", AccountNeedsPassword: "Uw eigen pagina is hier niet beschikbaar.",
		ValidUntil: "Deze link werkt tot {until}.", SignInAgain: "Opnieuw aanmelden",
	},
}

func texts(lang string) text {
	if t, ok := catalog[lang]; ok {
		return t
	}
	return catalog["en"]
}

// langOf is the tenant's language when known, else the browser's first
// language that has a catalogue, else English.
func langOf(r *http.Request, tenant string) string {
	if _, ok := catalog[tenant]; ok {
		return tenant
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag, _, _ = strings.Cut(strings.ToLower(tag), "-")
		if _, ok := catalog[tag]; ok {
			return tag
		}
	}
	return "en"
}

func (s *Server) render(w http.ResponseWriter, status int, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if p.Title == "" {
		p.Title = p.T.Title
	}
	if err := pageTemplate.Execute(w, p); err != nil {
		s.Log.Error("render page", "err", err)
	}
}

// limiter allows n events per key in each period: a fixed window, enough
// to stop guessing on the sign-in page.
type limiter struct {
	mu     sync.Mutex
	n      int
	period time.Duration
	counts map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newLimiter(n int, period time.Duration) *limiter {
	return &limiter{n: n, period: period, counts: map[string]*window{}}
}

// allow counts an event from ip: an IPv4 address counts alone, an IPv6
// address with the rest of its /64, which one host or home usually holds
// whole.
func (l *limiter) allow(ip netip.Addr, now time.Time) bool {
	key := ip.String()
	if ip.Is6() {
		key = netip.PrefixFrom(ip, 64).Masked().String()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.counts) > 10000 {
		for k, w := range l.counts {
			if now.Sub(w.start) >= l.period {
				delete(l.counts, k)
			}
		}
	}
	w := l.counts[key]
	if w == nil || now.Sub(w.start) >= l.period {
		w = &window{start: now}
		l.counts[key] = w
	}
	w.n++
	return w.n <= l.n
}
