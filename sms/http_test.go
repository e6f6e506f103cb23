package sms

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testMessage is a message whose text needs escaping everywhere it goes:
// a plus in the number, and quotes, an ampersand, a percent sign, a
// newline and non-ASCII letters in the text.
func testMessage() Message {
	return Message{
		Channel: "sms",
		To:      "+31612345678",
		Text:    "Uw code: 914207 & \"niet\" delen, 100% geheim\nGroetjes — ünïcode",
		Code:    "914207",
		Lang:    "nl",
	}
}

// delivery is what a fake provider API understood it was asked to send.
type delivery struct {
	To, Text, Lang string
}

// fakeAPI records the deliveries its handlers accept.
type fakeAPI struct {
	mu  sync.Mutex
	got []delivery
}

func (f *fakeAPI) record(d delivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, d)
}

func (f *fakeAPI) deliveries() []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// serve starts an httptest.Server on 127.0.0.1 for the length of the test.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// hangingServer answers nothing until the test ends (or the client goes
// away), to play a provider that has stopped responding.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close, which waits for handlers
	return srv
}

// statusServer answers every request with status, echoing the request
// body, query and headers the way chatty provider APIs do.
func statusServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"error": "rejected", "request": string(body), "query": r.URL.RawQuery, "headers": r.Header,
		})
	})
}

// refusedAddr is a 127.0.0.1 address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func mustHTTP(t *testing.T, name string, c HTTPConfig) *HTTP {
	t.Helper()
	h, err := NewHTTP(name, c, nil)
	if err != nil {
		t.Fatalf("NewHTTP(%s): %v", name, err)
	}
	return h
}

// birdAPI plays Bird's channels API: a JSON POST with nested objects and
// an AccessKey authorization header.
func birdAPI(t *testing.T, f *fakeAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method: got %s, want POST", r.Method)
		}
		if r.URL.Path != "/workspaces/ws-1/channels/ch-1/messages" {
			t.Errorf("path: got %s, want /workspaces/ws-1/channels/ch-1/messages", r.URL.Path)
		}
		if got, want := r.Header.Get("Authorization"), "AccessKey live_abc"; got != want {
			t.Errorf("Authorization: got %q, want %q", got, want)
		}
		if got, want := r.Header.Get("Content-Type"), "application/json"; got != want {
			t.Errorf("Content-Type: got %q, want %q", got, want)
		}
		var req struct {
			Receiver struct {
				Contacts []struct {
					IdentifierValue string `json:"identifierValue"`
				} `json:"contacts"`
			} `json:"receiver"`
			Body struct {
				Type string `json:"type"`
				Text struct {
					Text string `json:"text"`
				} `json:"text"`
			} `json:"body"`
			Locale string `json:"locale"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			t.Errorf("decode body: %v", err)
			http.Error(w, "bad json", http.StatusUnprocessableEntity)
			return
		}
		if len(req.Receiver.Contacts) != 1 || req.Body.Type != "text" {
			t.Errorf("body shape: got %+v, want one contact and type text", req)
			http.Error(w, "bad shape", http.StatusUnprocessableEntity)
			return
		}
		f.record(delivery{req.Receiver.Contacts[0].IdentifierValue, req.Body.Text.Text, req.Locale})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "m-1", "status": "accepted", "body": req.Body})
	}
}

// messageBirdAPI plays MessageBird's REST API: a flat JSON POST.
func messageBirdAPI(t *testing.T, f *fakeAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if got, want := r.Header.Get("Authorization"), "AccessKey live_abc"; got != want {
			t.Errorf("Authorization: got %q, want %q", got, want)
		}
		if got, want := r.Header.Get("Content-Type"), "application/json"; got != want {
			t.Errorf("Content-Type: got %q, want %q", got, want)
		}
		raw, _ := io.ReadAll(r.Body)
		var req map[string]string
		if err := json.Unmarshal(raw, &req); err != nil {
			t.Errorf("decode body %s: %v", raw, err)
		}
		want := `{"body":` // keys in order
		if !strings.HasPrefix(string(raw), want) {
			t.Errorf("body: got %s, want it to start %s", raw, want)
		}
		if got, want := req["originator"], "otpgate"; got != want {
			t.Errorf("originator: got %q, want %q", got, want)
		}
		f.record(delivery{req["recipients"], req["body"], req["language"]})
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"mb-1"}`)
	}
}

// twilioAPI plays Twilio's Messages resource: a form POST with basic auth,
// answering 201.
func twilioAPI(t *testing.T, f *fakeAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method: got %s, want POST", r.Method)
		}
		if got, want := r.URL.Path, "/2010-04-01/Accounts/AC123/Messages.json"; got != want {
			t.Errorf("path: got %s, want %s", got, want)
		}
		user, pass, ok := r.BasicAuth()
		if !ok || user != "AC123" || pass != "tok3n" {
			t.Errorf("basic auth: got %q, %q, %v, want AC123, tok3n, true", user, pass, ok)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if got, want := r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"; got != want {
			t.Errorf("Content-Type: got %q, want %q", got, want)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		if got, want := r.PostForm.Get("From"), "+15005550006"; got != want {
			t.Errorf("From: got %q, want %q", got, want)
		}
		if len(r.PostForm) != 3 {
			t.Errorf("form: got %v, want To, From and Body", r.PostForm)
		}
		f.record(delivery{r.PostForm.Get("To"), r.PostForm.Get("Body"), ""})
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
	}
}

// queryAPI plays the many gateways that take a GET with everything in the
// query string and answer "OK".
func queryAPI(t *testing.T, f *fakeAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			t.Errorf("method: got %s, want GET", r.Method)
		}
		if r.ContentLength > 0 {
			t.Errorf("content length: got %d, want no body", r.ContentLength)
		}
		q := r.URL.Query()
		if got, want := q.Get("api_key"), "k&y"; got != want {
			t.Errorf("api_key: got %q, want %q", got, want)
		}
		f.record(delivery{q.Get("to"), q.Get("text"), q.Get("lang")})
		_, _ = io.WriteString(w, "OK")
	}
}

func TestHTTPSendsWhatAPIsExpect(t *testing.T) {
	m := testMessage()
	tests := []struct {
		name string
		api  func(*testing.T, *fakeAPI) http.HandlerFunc
		cfg  func(base string) HTTPConfig
		want delivery
	}{
		{
			name: "bird nested json body",
			api:  birdAPI,
			cfg: func(base string) HTTPConfig {
				return HTTPConfig{
					URL:     base + "/workspaces/ws-1/channels/ch-1/messages",
					Headers: map[string]string{"Authorization": "AccessKey live_abc"},
					Body: `{"receiver":{"contacts":[{"identifierValue":{{json .To}}}]},` +
						`"body":{"type":"text","text":{"text":{{json .Text}}}},"locale":{{json .Lang}}}`,
					ContentType: "application/json",
				}
			},
			want: delivery{m.To, m.Text, "nl"},
		},
		{
			name: "messagebird flat json params",
			api:  messageBirdAPI,
			cfg: func(base string) HTTPConfig {
				return HTTPConfig{
					URL:      base + "/messages",
					Headers:  map[string]string{"authorization": "AccessKey live_abc"}, // as viper gives keys
					Encoding: "json",
					Params: map[string]string{
						"recipients": "{{.To}}", "originator": "otpgate", "body": "{{.Text}}", "language": "{{.Lang}}",
					},
				}
			},
			want: delivery{m.To, m.Text, "nl"},
		},
		{
			name: "twilio form with basic auth",
			api:  twilioAPI,
			cfg: func(base string) HTTPConfig {
				return HTTPConfig{
					Method:   "post",
					URL:      base + `/2010-04-01/Accounts/{{pathescape "AC123"}}/Messages.json`,
					Params:   map[string]string{"To": "{{.To}}", "From": "+15005550006", "Body": "{{.Text}}"},
					Username: "AC123",
					Password: "tok3n",
					Success:  []int{201},
				}
			},
			want: delivery{m.To, m.Text, ""},
		},
		{
			name: "query get with params",
			api:  queryAPI,
			cfg: func(base string) HTTPConfig {
				return HTTPConfig{
					Method: "GET",
					URL:    base + "/send?api_key=k%26y",
					Params: map[string]string{"to": "{{.To}}", "text": "{{.Text}}", "lang": "{{.Lang}}"},
				}
			},
			want: delivery{m.To, m.Text, "nl"},
		},
		{
			name: "query get with the url alone",
			api:  queryAPI,
			cfg: func(base string) HTTPConfig {
				return HTTPConfig{
					Method: "GET",
					URL:    base + "/send?api_key=k%26y&to={{urlquery .To}}&text={{urlquery .Text}}&lang={{urlquery .Lang}}",
				}
			},
			want: delivery{m.To, m.Text, "nl"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{}
			srv := serve(t, tt.api(t, api))
			h := mustHTTP(t, "p", tt.cfg(srv.URL))
			if err := h.Send(t.Context(), m); err != nil {
				t.Fatalf("Send: got %v, want nil", err)
			}
			if got, want := api.deliveries(), []delivery{tt.want}; !slices.Equal(got, want) {
				t.Errorf("deliveries: got %q, want %q", got, want)
			}
		})
	}
}

func TestHTTPLangDefaultsToEnglish(t *testing.T) {
	api := &fakeAPI{}
	srv := serve(t, queryAPI(t, api))
	h := mustHTTP(t, "p", HTTPConfig{
		URL:    srv.URL + "/send?api_key=k%26y",
		Method: "GET",
		Params: map[string]string{"to": "{{.To}}", "text": "{{.Text}}", "lang": "{{.Lang}}"},
	})
	m := testMessage()
	m.Lang = ""
	if err := h.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: got %v, want nil", err)
	}
	if got, want := api.deliveries(), []delivery{{m.To, m.Text, "en"}}; !slices.Equal(got, want) {
		t.Errorf("deliveries: got %q, want %q", got, want)
	}
}

func TestHTTPSuccessCodes(t *testing.T) {
	tests := []struct {
		status  int
		success []int
		wantErr string // empty means delivered
	}{
		{200, nil, ""},
		{204, nil, ""},
		{299, nil, ""},
		{302, nil, "status 302"}, // not followed
		{404, nil, "status 404"},
		{500, nil, "status 500"},
		{201, []int{201}, ""},
		{200, []int{201}, "status 200"},
		{302, []int{200, 302}, ""},
	}
	for _, tt := range tests {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			if tt.status == http.StatusFound {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(tt.status)
		})
		h := mustHTTP(t, "p", HTTPConfig{URL: srv.URL, Success: tt.success})
		err := h.Send(t.Context(), testMessage())
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("status %d, success %v: got %v, want nil", tt.status, tt.success, err)
		case tt.wantErr != "" && (err == nil || !strings.HasSuffix(err.Error(), ": "+tt.wantErr)):
			t.Errorf("status %d, success %v: got %v, want an error ending %q", tt.status, tt.success, err, tt.wantErr)
		}
	}
}

// TestHTTPErrorsKeepSecrets sends through a configuration full of secrets
// to providers that fail in every way there is, and checks that each error
// says what went wrong without repeating any of them.
func TestHTTPErrorsKeepSecrets(t *testing.T) {
	m := testMessage()
	secrets := []string{
		m.Code, m.Text, "ünïcode", // the text, also in pieces
		"sekrit-key",          // in the URL's query
		"hdr-s3cret",          // a header value
		"pw-s3cret",           // the basic auth password
		"/v1/",                // the URL's path
		"rejected", "request", // what statusServer answers
	}
	config := func(host string) HTTPConfig {
		return HTTPConfig{
			URL:      "http://" + host + "/v1/{{pathescape .To}}/send?key=sekrit-key&code={{.Code}}",
			Headers:  map[string]string{"X-Api-Key": "hdr-s3cret", "X-Code": "{{.Code}}"},
			Params:   map[string]string{"text": "{{.Text}}", "code": "{{.Code}}"},
			Username: "user",
			Password: "pw-s3cret",
			Timeout:  200 * time.Millisecond,
		}
	}
	host := func(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

	tests := []struct {
		name string
		host func(t *testing.T) string
		edit func(*HTTPConfig, *Message)
		want []string // in the error, in this order
	}{
		{
			name: "server error",
			host: func(t *testing.T) string { return host(statusServer(t, http.StatusInternalServerError)) },
			want: []string{"post to http://127.0.0.1:", ": status 500"},
		},
		{
			name: "client error",
			host: func(t *testing.T) string { return host(statusServer(t, http.StatusBadRequest)) },
			want: []string{"post to http://127.0.0.1:", ": status 400"},
		},
		{
			name: "timeout",
			host: func(t *testing.T) string { return host(hangingServer(t)) },
			want: []string{"post to http://127.0.0.1:", ": timeout after 200ms"},
		},
		{
			name: "connection refused",
			host: refusedAddr,
			want: []string{"post to http://127.0.0.1:", "connect: connection refused"},
		},
		{
			name: "malformed response quoting the code",
			host: func(t *testing.T) string { return rawServer(t, "HTTP/1.1 914207 "+m.Text+"\r\n\r\n") },
			want: []string{"post to http://127.0.0.1:", `malformed HTTP status code "…"`},
		},
		{
			name: "text breaks the url",
			host: func(t *testing.T) string { return host(statusServer(t, http.StatusOK)) },
			edit: func(c *HTTPConfig, m *Message) {
				c.URL = strings.Replace(c.URL, "/send", "/{{.Text}}", 1)
				m.Text = "bad escape %zz " + m.Text
			},
			want: []string{"render url: the result is not a URL"},
		},
		{
			name: "text breaks a header",
			host: func(t *testing.T) string { return host(statusServer(t, http.StatusOK)) },
			edit: func(c *HTTPConfig, m *Message) { c.Headers["X-Text"] = "{{.Text}}" },
			want: []string{"render headers.X-Text: the result holds a control character"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, m := config(tt.host(t)), testMessage()
			if tt.edit != nil {
				tt.edit(&c, &m)
			}
			h := mustHTTP(t, "p", c)
			start := time.Now()
			err := h.Send(t.Context(), m)
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("Send took %s, want well under 3s", elapsed)
			}
			if err == nil {
				t.Fatal("Send: got nil, want an error")
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("error: got %q, want it to contain %q", msg, tt.want)
					break
				}
				rest = rest[i+len(w):]
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error: got %q, which gives away %q", msg, s)
				}
			}
		})
	}
}

// rawServer answers each connection on 127.0.0.1 with reply, whatever it
// was sent, and returns its address.
func rawServer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				// Read the request head before answering, so the client
				// sees a reply rather than a reset.
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(conn, reply)
			})
		}
	})
	return ln.Addr().String()
}

func TestHTTPTimeoutIsDeadlineExceeded(t *testing.T) {
	srv := hangingServer(t)
	h := mustHTTP(t, "p", HTTPConfig{URL: srv.URL, Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := h.Send(t.Context(), testMessage())
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Send took %s, want well under 3s", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded): got false, want true", err)
	}
}

func TestHTTPStopsWhenContextIsCancelled(t *testing.T) {
	srv := hangingServer(t)
	h := mustHTTP(t, "p", HTTPConfig{URL: srv.URL}) // 10s default timeout
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := h.Send(ctx, testMessage())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(%v, context.Canceled): got false, want true", err)
	}
}

// A body that arrives slowly after an accepted status does not undo the
// delivery: failing here would make a Chain send the code twice.
func TestHTTPAcceptedStatusWithStalledBody(t *testing.T) {
	release := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"status":`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	h := mustHTTP(t, "p", HTTPConfig{URL: srv.URL, Timeout: 200 * time.Millisecond})
	if err := h.Send(t.Context(), testMessage()); err != nil {
		t.Errorf("Send: got %v, want nil", err)
	}
}

func TestNewHTTPDefaults(t *testing.T) {
	tests := []struct {
		name         string
		cfg          HTTPConfig
		wantMethod   string
		wantEncoding string
	}{
		{"post with params", HTTPConfig{URL: "https://x.test/", Params: map[string]string{"a": "b"}}, "POST", "form"},
		{"get with params", HTTPConfig{URL: "https://x.test/", Method: "get", Params: map[string]string{"a": "b"}}, "GET", "query"},
		{"put with json", HTTPConfig{URL: "https://x.test/", Method: "PUT", Encoding: "json"}, "PUT", "json"},
		{"post with body", HTTPConfig{URL: "https://x.test/", Body: "{}"}, "POST", ""},
		{"bare get", HTTPConfig{URL: "http://x.test/{{.To}}", Method: "GET"}, "GET", ""},
	}
	for _, tt := range tests {
		h, err := NewHTTP(tt.name, tt.cfg, nil)
		if err != nil {
			t.Errorf("%s: NewHTTP: %v", tt.name, err)
			continue
		}
		if h.Name() != tt.name || h.method != tt.wantMethod || h.encoding != tt.wantEncoding || h.timeout != 10*time.Second {
			t.Errorf("%s: got name %q, method %s, encoding %q, timeout %s, want %q, %s, %q, 10s",
				tt.name, h.Name(), h.method, h.encoding, h.timeout, tt.name, tt.wantMethod, tt.wantEncoding)
		}
	}
}

func TestNewHTTPConfigErrors(t *testing.T) {
	const u = "https://api.example.com/send"
	tests := []struct {
		name string
		cfg  HTTPConfig
		want []string // the start of each line of the error
	}{
		{"no url", HTTPConfig{}, []string{"url: is missing"}},
		{"unclosed action", HTTPConfig{URL: u + "?to={{.To"}, []string{"url: template: url:1: unclosed action"}},
		{"unknown field", HTTPConfig{URL: u + "?to={{.Phone}}"}, []string{`url: template: url:1:34: executing "url" at <.Phone>: can't evaluate field Phone in type sms.Message`}},
		{"unknown function", HTTPConfig{URL: u + "?to={{shout .To}}"}, []string{`url: template: url:1: function "shout" not defined`}},
		{"ftp", HTTPConfig{URL: "ftp://files.example.com/{{.To}}"}, []string{`url: scheme "ftp" is not http or https`}},
		{"no scheme", HTTPConfig{URL: "{{.To}}"}, []string{`url: scheme "" is not http or https`}},
		{"no host", HTTPConfig{URL: "https:///send"}, []string{"url: has no host"}},
		{"bad url keeps the key", HTTPConfig{URL: "https://api.example.com:port/?key=sekrit"}, []string{"url: does not parse as a URL"}},
		{
			"header template",
			HTTPConfig{URL: u, Headers: map[string]string{"Authorization": "AccessKey {{.Key}}"}},
			[]string{`headers.Authorization: template: headers.Authorization:1:12: executing "headers.Authorization" at <.Key>: can't evaluate field Key`},
		},
		{"header name", HTTPConfig{URL: u, Headers: map[string]string{"X Key": "k"}}, []string{`headers.X Key: "X Key" is not a header name`}},
		{
			"header twice",
			HTTPConfig{URL: u, Headers: map[string]string{"X-Key": "a", "x-key": "b"}},
			[]string{"headers.x-key: X-Key is given twice"},
		},
		{
			"param template",
			HTTPConfig{URL: u, Params: map[string]string{"To": "{{.Too}}", "Body": "{{.Text}"}},
			[]string{`params.Body: template: params.Body:1: bad character U+007D '}'`, "params.To: template: params.To:1:"},
		},
		{"params and body", HTTPConfig{URL: u, Params: map[string]string{"a": "b"}, Body: "{}"}, []string{"body: give params or body, not both"}},
		{"body template", HTTPConfig{URL: u, Body: `{"to": {{json}}}`}, []string{"body: template: body:1:"}},
		{"unknown encoding", HTTPConfig{URL: u, Params: map[string]string{"a": "b"}, Encoding: "xml"}, []string{`encoding: "xml" is not form, json or query`}},
		{"encoding with body", HTTPConfig{URL: u, Body: "{}", Encoding: "json"}, []string{"encoding: says how params are sent"}},
		{"get with body", HTTPConfig{URL: u, Method: "GET", Body: "x"}, []string{"body: a GET request has no body"}},
		{"get with form", HTTPConfig{URL: u, Method: "GET", Encoding: "form", Params: map[string]string{"a": "b"}}, []string{"encoding: form puts params in a body, and a GET request has none"}},
		{"content type without body", HTTPConfig{URL: u, ContentType: "application/json"}, []string{"content_type: is the type of body, and there is no body"}},
		{"method", HTTPConfig{URL: u, Method: "SEND IT"}, []string{`method: "SEND IT" is not an HTTP method`}},
		{
			"basic auth and authorization header",
			HTTPConfig{URL: u, Username: "u", Headers: map[string]string{"authorization": "Bearer x"}},
			[]string{"username: basic auth and an Authorization header are both set"},
		},
		{"success codes", HTTPConfig{URL: u, Success: []int{200, 42, 600}}, []string{"success: 42 is not an HTTP status code", "success: 600 is not an HTTP status code"}},
		{"timeout", HTTPConfig{URL: u, Timeout: -time.Second}, []string{"timeout: -1s is negative"}},
		{
			"every problem at once",
			HTTPConfig{Method: "GET", Body: "{{", Timeout: -time.Second},
			[]string{"url: is missing", "body: template: body:1:", "body: a GET request has no body", "timeout: -1s is negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHTTP("p", tt.cfg, nil)
			if err == nil {
				t.Fatalf("NewHTTP: got %+v, want an error", h)
			}
			assertErrorLines(t, err, tt.want)
			if strings.Contains(err.Error(), "sekrit") {
				t.Errorf("error: got %q, which repeats the URL's key", err)
			}
		})
	}
}

// assertErrorLines checks that err has one line for each want, in order,
// and that each starts with its want.
func assertErrorLines(t *testing.T, err error, want []string) {
	t.Helper()
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("error: got %d lines %q, want %d starting %q", len(lines), lines, len(want), want)
		return
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error line %d: got %q, want it to start %q", i+1, lines[i], w)
		}
	}
}
