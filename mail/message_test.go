package mail

import (
	"bytes"
	"io"
	"maps"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/otpgate/otpgate/sms"
)

// FuzzCompose checks that whatever the text and the recipient, the message
// parses, has exactly its own headers, and carries the text intact in the
// subject and the body.
func FuzzCompose(f *testing.F) {
	f.Add("alice@example.com", "Your login code is 482913", "482913", "en")
	f.Add("Zoë de Vries <zoe@example.com>", "Uw code: één 482913", "482913", "nl-BE")
	f.Add("alice@example.com", "x\r\nBcc: mallory@example.com\r\n\r\nbody", "1", "nl")
	f.Add("alice@example.com", ".\n..\r\n.", "", "")
	f.Add(`"a very, long \"name\"" <a@b.example>`, strings.Repeat("word ", 300), "0", "en")
	f.Add("b@example.com", strings.Repeat("ë", 300)+"\t=?utf-8?q?x?=", "0", "en")
	s, err := NewSMTP("fuzz", Config{
		Host: "localhost", From: "Acmé <otp@acme.example>",
		Subject: map[string]string{"en": "{{.Text}}", "nl": "Code {{.Code}}: {{.Text}}"},
		Body:    map[string]string{"en": "{{.Text}}", "nl": "{{.Text}}"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, to, text, code, lang string) {
		if !utf8.ValidString(text) || !utf8.ValidString(code) {
			t.Skip("texts are UTF-8")
		}
		rcpt, err := recipient(to)
		if err != nil {
			t.Skip("Send refuses this recipient")
		}
		m := sms.Message{Channel: "email", To: to, Text: text, Code: code, Lang: lang}
		raw, err := s.compose(rcpt, m)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.Split(raw, []byte("\r\n")) {
			if bytes.ContainsAny(line, "\r\n") || len(line) > 998 {
				t.Fatalf("line %d is not a proper line: %q", i+1, line)
			}
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("the message does not parse: %v\n%q", err, raw)
		}
		want := []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}
		if got := slices.Sorted(maps.Keys(msg.Header)); !slices.Equal(got, want) {
			t.Fatalf("got headers %q, want %q", got, want)
		}
		if got, err := msg.Header.AddressList("To"); err != nil || len(got) != 1 || got[0].Address != rcpt.Address {
			t.Errorf("got To %v (%v), want %s", got, err, rcpt.Address)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("Subject %q: %v", msg.Header.Get("Subject"), err)
		}
		rendered, err := render(s.subject, m)
		if err != nil {
			t.Fatal(err)
		}
		wantSubject := strings.Join(strings.Fields(rendered), " ")
		// Cut subjects are TestEncodeSubjectCutsLongOnes's, and ASCII that
		// looks like an encoded-word is shown decoded (see encodeSubject).
		cut := utf8.RuneCountInString(wantSubject) > maxSubject
		if !cut && !strings.Contains(wantSubject, "=?") && subject != wantSubject {
			t.Errorf("got subject %q, want %q", subject, wantSubject)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
		if err != nil {
			t.Fatal(err)
		}
		wantBody := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n"), "\n", "\r\n")
		if string(body) != wantBody {
			t.Errorf("got body %q, want %q", body, wantBody)
		}
	})
}

func TestEncodeSubjectCutsLongOnes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Uw inlogcode", "Uw inlogcode"},
		{strings.Repeat("a", maxSubject), strings.Repeat("a", maxSubject)},
		{strings.Repeat("a", maxSubject+1), strings.Repeat("a", maxSubject-1) + "…"},
		{strings.Repeat("ë", maxSubject+1), strings.Repeat("ë", maxSubject-1) + "…"},
	}
	for _, tt := range tests {
		got, err := new(mime.WordDecoder).DecodeHeader(encodeSubject(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("encodeSubject(%d runes): got %q (%v), want %q", utf8.RuneCountInString(tt.in), got, err, tt.want)
		}
	}
}
