package sms

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"text/template"
)

// The HTTP and Command providers build what they send from text/template
// templates over a Message: {{.Channel}}, {{.To}}, {{.Text}}, {{.Code}} and
// {{.Lang}}. Values are inserted as they are; the template says how to
// escape them with urlquery, pathescape or json.

// templateFuncs are the functions a provider template may call.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		// urlquery escapes s for a URL query or a form value.
		"urlquery": url.QueryEscape,
		// pathescape escapes s for one URL path segment.
		"pathescape": url.PathEscape,
		// json gives s as a JSON string, quotes included.
		"json": jsonString,
	}
}

// jsonString gives s as a JSON string literal. It leaves <, > and & alone:
// the result goes to an API, not into HTML.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// sampleMessage is what templates are tried on when a provider is built,
// so that a template naming a field Message lacks fails at startup rather
// than on the first login.
func sampleMessage() Message {
	return Message{Channel: "sms", To: "+15550100100", Text: "Your code is 123456", Code: "123456", Lang: "en"}
}

// parseTemplate parses text as the template called name and tries it on
// sampleMessage. Its errors start with "template: name:".
func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs()).Parse(text)
	if err != nil {
		return nil, err
	}
	if _, err := render(t, sampleMessage()); err != nil {
		return nil, err
	}
	return t, nil
}

// render executes t over m. An empty m.Lang reads as "en", as Message
// documents.
func render(t *template.Template, m Message) (string, error) {
	if m.Lang == "" {
		m.Lang = "en"
	}
	var b strings.Builder
	if err := t.Execute(&b, m); err != nil {
		return "", err
	}
	return b.String(), nil
}
