package web

import (
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/otpgate/otpgate/policy"
)

// page is what one render needs.
type page struct {
	T        text
	Approval *policy.Approval
	SignIn   bool
	// AskPassword puts a password field in the sign-in form's first step.
	AskPassword bool
	CSRF        string
	Name        string
	State       string
	Prompt      string
	Error       string
	Done        string
}

// text is a page's words in one language.
type text struct {
	Lang, Title                        string
	ApproveHeading, ApproveIntro       string
	Gateway, From, Machine, When       string
	Approve, Deny                      string
	Approved, Denied, Gone, Forbidden  string
	SignInHeading, SignInIntro         string
	Name, Password, Code, Next, SignIn string
	Preapproved, Failed, TooMany       string
	NameNeeded                         string
}

var catalog = map[string]text{
	"en": {
		Lang: "en", Title: "Login approval",
		ApproveHeading: "Is this you logging in?",
		ApproveIntro:   "Approve only if you are logging in right now.",
		Gateway:        "To", From: "From", Machine: "Computer", When: "At",
		Approve: "Approve", Deny: "Deny",
		Approved:      "Approved. Your login continues; you can close this page.",
		Denied:        "Denied. The login has been refused.",
		Gone:          "This link has been used or has expired. Log in again to get a new one.",
		Forbidden:     "This form did not come from this page. Open the link again.",
		SignInHeading: "Sign in", SignInIntro: "Prove a code here, then log in to the remote desktop within a few minutes.",
		Name: "User name", Password: "Password", Code: "Code", Next: "Next", SignIn: "Sign in",
		Preapproved: "Done. Log in to the remote desktop within the next few minutes.",
		Failed:      "That did not work. Please try again.",
		TooMany:     "Too many attempts. Please wait a minute and try again.",
		NameNeeded:  "Enter your user name.",
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
		SignInHeading: "Aanmelden", SignInIntro: "Bevestig hier een code en meld u daarna binnen enkele minuten aan op het externe bureaublad.",
		Name: "Gebruikersnaam", Password: "Wachtwoord", Code: "Code", Next: "Volgende", SignIn: "Aanmelden",
		Preapproved: "Gelukt. Meld u binnen enkele minuten aan op het externe bureaublad.",
		Failed:      "Dat is niet gelukt. Probeer het opnieuw.",
		TooMany:     "Te veel pogingen. Wacht een minuut en probeer het opnieuw.",
		NameNeeded:  "Voer uw gebruikersnaam in.",
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
	if err := pageTemplate.Execute(w, p); err != nil {
		s.Log.Error("render page", "err", err)
	}
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"clock": func(t time.Time) string { return t.Format("15:04:05") },
}).Parse(`<!doctype html>
<html lang="{{.T.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.T.Title}}</title>
<style>
body{font:17px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f3f4f6;color:#111827}
main{max-width:26rem;margin:0 auto;padding:1.5rem 1rem}
.card{background:#fff;border-radius:12px;padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.35rem;margin:0 0 .5rem}
p{margin:.5rem 0 1rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.35rem .9rem;margin:0 0 1.25rem}
dt{color:#6b7280}dd{margin:0;font-weight:600;word-break:break-all}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{box-sizing:border-box;width:100%;font-size:1.1rem;padding:.65rem;border:1px solid #d1d5db;border-radius:8px}
button{width:100%;font-size:1.1rem;padding:.8rem;margin-top:.9rem;border:0;border-radius:8px;color:#fff;background:#2563eb}
button.deny{background:#b91c1c}
.error{color:#b91c1c;font-weight:600}
.prompt{font-weight:600}
</style></head><body><main><div class="card">
{{- if .Done}}
<p id="result">{{.Done}}</p>
{{- else if .Approval}}
<h1>{{.T.ApproveHeading}}</h1>
<p>{{.T.ApproveIntro}}</p>
<dl>
<dt>{{.T.Gateway}}</dt><dd>{{.Approval.Client}}</dd>
{{- if .Approval.IP.IsValid}}<dt>{{.T.From}}</dt><dd>{{.Approval.IP}}</dd>{{end}}
{{- if .Approval.Machine}}<dt>{{.T.Machine}}</dt><dd>{{.Approval.Machine}}</dd>{{end}}
<dt>{{.T.When}}</dt><dd>{{clock .Approval.Created}}</dd>
</dl>
<form method="post"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button id="approve" name="action" value="approve">{{.T.Approve}}</button>
<button id="deny" class="deny" name="action" value="deny">{{.T.Deny}}</button>
</form>
{{- else if .SignIn}}
<h1>{{.T.SignInHeading}}</h1>
<p>{{.T.SignInIntro}}</p>
{{- if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
<form method="post" action="/signin"><input type="hidden" name="csrf" value="{{.CSRF}}">
{{- if .State}}
<input type="hidden" name="name" value="{{.Name}}"><input type="hidden" name="state" value="{{.State}}">
<p class="prompt" id="prompt">{{.Prompt}}</p>
<label for="code">{{.T.Code}}</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" autofocus>
<button id="submit">{{.T.SignIn}}</button>
{{- else}}
<label for="name">{{.T.Name}}</label>
<input id="name" name="name" autocomplete="username" autocapitalize="none" autofocus>
{{- if .AskPassword}}
<label for="password">{{.T.Password}}</label>
<input id="password" name="password" type="password" autocomplete="current-password">
{{- end}}
<button id="submit">{{.T.Next}}</button>
{{- end}}
</form>
{{- end}}
</div></main></body></html>
`))

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

func (l *limiter) allow(key string, now time.Time) bool {
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
