package mail

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/otpgate/otpgate/sms"
)

// The shipped texts, by language. {{.Text}} is the tenant's code_text,
// code included.
var (
	defaultSubject = map[string]string{
		"en": "Your login code",
		"nl": "Uw inlogcode",
	}
	defaultBody = map[string]string{
		"en": "{{.Text}}\n\nIf you did not just try to log in, please tell your administrator.\n",
		"nl": "{{.Text}}\n\nHebt u niet zojuist geprobeerd in te loggen? Meldt u dat dan bij uw beheerder.\n",
	}
)

// sampleMessage is what templates are tried on when a provider is built,
// so that a template naming a field Message lacks fails at start rather
// than on the first login.
var sampleMessage = sms.Message{Channel: "email", To: "alice@example.com", Text: "Your login code is 123456", Code: "123456", Lang: "en"}

// parseTemplates parses the shipped texts overlaid with the configured
// ones, keyed by lower-case language tag. Its errors start with
// "field.lang: ".
func parseTemplates(field string, shipped, configured map[string]string) (map[string]*template.Template, []error) {
	texts := maps.Clone(shipped)
	var errs []error
	for lang, text := range configured {
		if !isLangTag(lang) {
			errs = append(errs, fmt.Errorf("%s: %q is not a language tag such as en or nl", field, lang))
			continue
		}
		texts[strings.ToLower(lang)] = text
	}
	out := make(map[string]*template.Template, len(texts))
	for _, lang := range slices.Sorted(maps.Keys(texts)) {
		t, err := template.New(field + "." + lang).Option("missingkey=error").Parse(texts[lang])
		if err == nil {
			err = t.Execute(io.Discard, sampleMessage)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w", field, lang, err))
			continue
		}
		out[lang] = t
	}
	return out, errs
}

// isLangTag reports whether s looks like a language tag: ASCII letters,
// then letters, digits and hyphens.
func isLangTag(s string) bool {
	for i, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case i > 0 && (r == '-' || '0' <= r && r <= '9'):
		default:
			return false
		}
	}
	return s != ""
}

// render runs the template for m's language, whatever its case: "nl-BE"
// uses "nl-be", else "nl", else "en". An empty Lang reads as "en", as
// sms.Message documents.
func render(ts map[string]*template.Template, m sms.Message) (string, error) {
	if m.Lang == "" {
		m.Lang = "en"
	}
	lang := strings.ToLower(m.Lang)
	t := ts[lang]
	if base, _, ok := strings.Cut(lang, "-"); t == nil && ok {
		t = ts[base]
	}
	if t == nil {
		t = ts["en"]
	}
	var b strings.Builder
	if err := t.Execute(&b, m); err != nil {
		return "", err
	}
	return b.String(), nil
}

// recipient parses to, a bare address or "Name <address>", refusing line
// breaks that would start a header of their own.
func recipient(to string) (*netmail.Address, error) {
	if strings.ContainsAny(to, "\r\n") {
		return nil, errors.New("recipient holds a line break")
	}
	a, err := netmail.ParseAddress(to)
	if err != nil {
		return nil, errors.New("recipient is not an e-mail address")
	}
	if len(a.Address) > maxAddress {
		return nil, fmt.Errorf("recipient is longer than %d characters", maxAddress)
	}
	return a, nil
}

// maxAddress is the longest address SMTP carries (RFC 5321, 4.5.3.1.3,
// less the angle brackets).
const maxAddress = 254

// maxSubject is the most characters a subject keeps; the rest is cut.
const maxSubject = 200

// compose writes the whole message to to, headers and body, with CRLF line
// endings. The body is UTF-8 in quoted-printable, so every line is short
// and ASCII whatever the text.
func (s *SMTP) compose(to *netmail.Address, m sms.Message) ([]byte, error) {
	subject, err := render(s.subject, m)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	body, err := render(s.body, m)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	id := make([]byte, 16)
	if _, err := io.ReadFull(s.c.Rand, id); err != nil {
		return nil, fmt.Errorf("message-id: %w", err)
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", s.from.String())
	toHeader := to.String()
	if len(toHeader) > 500 {
		// A display name this long is no name; the address will do.
		toHeader = (&netmail.Address{Address: to.Address}).String()
	}
	header("To", toHeader)
	header("Subject", encodeSubject(subject))
	header("Date", s.c.Now().Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id)+"@"+s.domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=UTF-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	// The writer ends each line, "\n" or "\r\n", with CRLF.
	_, _ = qp.Write([]byte(body))
	_ = qp.Close()
	return b.Bytes(), nil
}

// encodeSubject makes subject one header value: whitespace runs, line
// breaks included, become one space; a subject longer than maxSubject
// characters is cut and ends in "…"; and text that is not plain ASCII
// becomes RFC 2047 encoded-words, one per folded line. (Plain ASCII that
// itself looks like an encoded-word, "=?UTF-8?q?...?=", is sent as it is
// and shown decoded; mime's encoder leaves such text alone.)
func encodeSubject(subject string) string {
	subject = strings.Join(strings.Fields(subject), " ")
	if utf8.RuneCountInString(subject) > maxSubject {
		subject = string([]rune(subject)[:maxSubject-1]) + "…"
	}
	enc := mime.QEncoding.Encode("UTF-8", subject)
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}
