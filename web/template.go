package web

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"strings"
)

// printScript shows the recovery codes' print button; without it (no
// JavaScript) the page says to print with the browser. The CSP lets only
// this script run, by its hash.
const printScript = `var b=document.getElementById("print");b.hidden=false;b.addEventListener("click",function(){window.print()});`

var printScriptHash = func() string {
	sum := sha256.Sum256([]byte(printScript))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"fill":        func(s, k, v string) string { return strings.ReplaceAll(s, "{"+k+"}", v) },
	"printScript": func() template.JS { return template.JS(printScript) },
}).Parse(`<!doctype html>
<html lang="{{.T.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:17px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f3f4f6;color:#111827}
main{max-width:26rem;margin:0 auto;padding:1.5rem 1rem}
.card{background:#fff;border-radius:12px;padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.12);margin-bottom:1rem}
h1{font-size:1.35rem;margin:0 0 .5rem}
h2{font-size:1.1rem;margin:0 0 .5rem}
p{margin:.5rem 0 1rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.35rem .9rem;margin:0 0 1.25rem}
dt{color:#4b5563}dd{margin:0;font-weight:600;word-break:break-all}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
label.check{display:flex;gap:.6rem;align-items:flex-start;font-weight:600}
label.check input{width:1.4rem;height:1.4rem;margin:.1rem 0 0}
input{box-sizing:border-box;width:100%;font-size:1.1rem;padding:.65rem;border:1px solid #6b7280;border-radius:8px}
button{width:100%;font-size:1.1rem;padding:.8rem;margin-top:.9rem;border:0;border-radius:8px;color:#fff;background:#1d4ed8;cursor:pointer}
button.deny{background:#b91c1c}
button.alt{background:#fff;color:#1d4ed8;border:2px solid #1d4ed8}
:focus-visible{outline:3px solid #111827;outline-offset:2px}
a{color:#1d4ed8}
.error{color:#b91c1c;font-weight:600}
.prompt{font-weight:600}
.qr{display:block;margin:.5rem auto;width:min(100%,264px);height:auto;image-rendering:pixelated}
.key{font:600 1.15rem/1.6 ui-monospace,Menlo,Consolas,monospace;letter-spacing:.05em;word-spacing:.4em;background:#f3f4f6;padding:.5rem;border-radius:8px}
ol.codes{font:600 1.1rem/1.8 ui-monospace,Menlo,Consolas,monospace;padding-left:2rem}
ul.list{list-style:none;padding:0;margin:0}
ul.list li{border-top:1px solid #e5e7eb;padding:.6rem 0}
.muted{color:#4b5563}
.ok{color:#166534;font-weight:600}.bad{color:#b91c1c;font-weight:600}
@media print{body{background:#fff}form,button,.noprint{display:none}.card{box-shadow:none}}
</style></head><body><main>
{{- if .Done}}
<div class="card"><h1>{{.Title}}</h1>
<p id="result">{{.Done}}</p>
{{- if .Account}}{{else if eq .Title .T.AccountTitle}}<p><a href="/me">{{.T.SignInAgain}}</a></p>{{end}}
</div>
{{- else if .Approval}}
<div class="card">
<h1>{{.T.ApproveHeading}}</h1>
<p>{{.T.ApproveIntro}}</p>
<dl>
<dt>{{.T.Gateway}}</dt><dd>{{.Gateway}}</dd>
{{- if .Approval.IP.IsValid}}<dt>{{.T.From}}</dt><dd>{{.Approval.IP}}</dd>{{end}}
{{- if .Approval.Machine}}<dt>{{.T.Machine}}</dt><dd>{{.Approval.Machine}}</dd>{{end}}
<dt>{{.T.When}}</dt><dd>{{.When}}</dd>
</dl>
<form method="post"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button id="approve" name="action" value="approve">{{.T.Approve}}</button>
<button id="deny" class="deny" name="action" value="deny">{{.T.Deny}}</button>
</form></div>
{{- else if .SignIn}}
<div class="card">
<h1>{{.Title}}</h1>
{{- if ne .To "me"}}<p>{{.T.SignInIntro}}</p>{{end}}
{{- if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/signin"><input type="hidden" name="csrf" value="{{.CSRF}}">
{{- if .To}}<input type="hidden" name="to" value="{{.To}}">{{end}}
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
</form></div>
{{- else if .Enrol}}{{with .Enrol}}
<div class="card">
<h1>{{$.Title}}</h1>
{{- template "steps" $}}
</div>{{end}}
{{- else if .Account}}{{with .Account}}
{{- if .View.Stage}}
<div class="card"><h1>{{$.Title}}</h1>
{{- template "steps" $}}
<form method="post" action="/me"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<button class="alt" id="back" name="action" value="back">{{$.T.Back}}</button></form>
</div>
{{- else}}
<div class="card"><h1>{{$.Title}}</h1>
<p>{{fill $.T.AccountIntro "user" .View.User}}</p>
{{- if $.Error}}<p class="error" id="error" role="alert">{{$.Error}}</p>{{end}}
<form method="post" action="/me"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<button class="alt" id="signout" name="action" value="signout">{{$.T.SignOut}}</button></form>
</div>
<div class="card"><h2>{{$.T.SecondFactor}}</h2>
<p id="recovery-left">{{fill $.T.Recovery "n" (print .Recovery)}}</p>
<form method="post" action="/me"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<button id="link" name="action" value="link">{{$.T.LinkPhone}}</button>
<button class="alt" id="codes" name="action" value="codes">{{$.T.NewCodes}}</button>
</form></div>
<div class="card"><h2>{{$.T.Places}}</h2>
{{- if .Remembered}}<ul class="list" id="places">
{{- range .Remembered}}<li><form method="post" action="/me"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<input type="hidden" name="ip" value="{{.IP}}"><span class="place">{{.IP}}</span> <span class="muted">– {{.Until}}</span>
<button class="alt forget" name="action" value="forget">{{fill $.T.Forget "ip" .IP}}</button></form></li>
{{- end}}</ul>
{{- else}}<p id="no-places">{{$.T.NoPlaces}}</p>{{end}}
</div>
<div class="card"><h2>{{$.T.Logins}}</h2>
{{- if .Logins}}<ul class="list" id="logins">
{{- range .Logins}}<li><form method="post" action="/me"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<input type="hidden" name="at" value="{{.Stamp}}">
<span class="when">{{.At}}</span> · {{.Gateway}} · {{.IP}} · {{if .Ok}}<span class="ok">{{$.T.Accepted}}</span>{{else}}<span class="bad">{{$.T.Rejected}}</span>{{end}}
<button class="deny notme" name="action" value="notme">{{$.T.NotMe}}</button></form></li>
{{- end}}</ul>
{{- else}}<p>{{$.T.NoLogins}}</p>{{end}}
</div>
{{- end}}{{end}}
{{- end}}
</main></body></html>
{{define "steps"}}{{$v := .Enrol}}{{if .Account}}{{$v = .Account.View}}{{end}}
{{- if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
{{- if eq $v.Stage "password"}}
<p>{{fill .T.EnrolIntro "user" $v.User}}</p>
<form method="post" action="{{$v.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="action" value="password">
<input type="hidden" name="name" value="{{$v.User}}" autocomplete="username">
<label for="password">{{.T.Password}}</label>
<input id="password" name="password" type="password" autocomplete="current-password" autofocus>
<button id="submit">{{.T.Next}}</button>
</form>
{{- if $v.Expires}}<p class="muted">{{fill .T.ValidUntil "until" $v.Expires}}</p>{{end}}
{{- else if eq $v.Stage "current"}}
<p>{{.T.CurrentIntro}}</p>
<form method="post" action="{{$v.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<p class="prompt" id="prompt">{{$v.Prompt}}</p>
<label for="code">{{.T.Code}}</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" autofocus>
<button id="submit" name="action" value="code">{{.T.Confirm}}</button>
<button class="alt" id="resend" name="action" value="resend">{{.T.Resend}}</button>
</form>
{{- else if eq $v.Stage "choose"}}
<p>{{.T.Choose}}</p>
<form method="post" action="{{$v.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button id="app" name="action" value="app">{{.T.UseApp}}</button>
{{- if $v.CanSMS}}<button class="alt" id="sms" name="action" value="sms">{{.T.UseSMS}}</button>{{end}}
</form>
{{- else if eq $v.Stage "link"}}
<ol>
<li>{{.T.LinkStep1}}</li>
<li>{{.T.LinkStep2}}<img class="qr" id="qr" src="{{$v.QR}}" alt="{{.T.QRAlt}}" width="264" height="264"></li>
<li>{{.T.LinkStep3}}<div class="key" id="secret">{{range $v.Groups}}{{.}} {{end}}</div></li>
<li>{{.T.LinkStep4}} <a id="otpauth" href="{{$v.URI}}">{{.T.OpenInApp}}</a></li>
</ol>
<form method="post" action="{{$v.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="code">{{.T.AppCode}}</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="7">
<button id="submit" name="action" value="code">{{.T.Confirm}}</button>
{{- if $v.CanSMS}}<button class="alt" id="sms" name="action" value="sms">{{.T.UseSMS}}</button>{{end}}
</form>
{{- else if eq $v.Stage "phone"}}
<form method="post" action="{{$v.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="phone">{{.T.Mobile}}</label>
<input id="phone" name="phone" type="tel" autocomplete="tel" aria-describedby="phone-hint" autofocus>
<p class="muted" id="phone-hint">{{.T.MobileHint}}</p>
<button id="submit" name="action" value="phone">{{.T.SendCode}}</button>
<button class="alt" id="app" name="action" value="app">{{.T.UseApp}}</button>
</form>
{{- else if eq $v.Stage "phonecode"}}
<form method="post" action="{{$v.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<p class="prompt" id="prompt">{{$v.Prompt}}</p>
<label for="code">{{.T.Code}}</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" autofocus>
<button id="submit" name="action" value="code">{{.T.Confirm}}</button>
<button class="alt" id="resend" name="action" value="resend">{{.T.Resend}}</button>
</form>
{{- else if eq $v.Stage "codes"}}
<h2>{{.T.CodesTitle}}</h2>
<p>{{.T.CodesIntro}}</p>
<ol class="codes" id="recovery-codes">{{range $v.Codes}}<li>{{.}}</li>{{end}}</ol>
<button class="alt" id="print" type="button" hidden>{{.T.Print}}</button>
<script>{{printScript}}</script>
<form method="post" action="{{$v.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<label class="check" for="saved"><input type="checkbox" id="saved" name="saved" value="yes" required> {{.T.Saved}}</label>
<button id="submit" name="action" value="saved">{{.T.Continue}}</button>
</form>
{{- else if eq $v.Stage "done"}}
{{- if not .Error}}<p id="result">{{if .Account}}{{.T.Linked}}{{else}}{{.T.EnrolDone}}{{end}}</p>{{end}}
{{- end}}
{{end}}`))
