package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"
)

// HTTPConfig describes the request an HTTP provider makes for each message.
// It is enough for the usual text and voice APIs: a form POST with basic
// auth (Twilio), a JSON POST with a key in a header (MessageBird, Bird), a
// GET with everything in the query string.
//
// URL, the Headers values, the Params values and Body are text/template
// templates over the Message: {{.To}}, {{.Text}}, {{.Code}}, {{.Lang}} and
// {{.Channel}}; .Lang is "en" when the message has none. Values are not
// escaped for you: write {{urlquery .Text}} in a query, {{pathescape .To}}
// in a path, {{json .Text}} (quotes included) in a JSON body. Params values
// need none of that; they are encoded as a whole.
type HTTPConfig struct {
	// Method is the request method. Empty means POST.
	Method string
	// URL is where the request goes: required, and it must render to an
	// http or https URL.
	URL string
	// Headers are extra request headers, name to value template. They are
	// set last, so a Content-Type here wins. Nil means none.
	Headers map[string]string
	// Params are request parameters, name to value template, encoded as
	// Encoding says. Nil means none.
	Params map[string]string
	// Encoding is how Params travel: "form" (an
	// application/x-www-form-urlencoded body), "json" (a body holding a flat
	// JSON object of strings) or "query" (added to the URL's query string).
	// Empty means "query" for GET and "form" for other methods. Parameters
	// are encoded in key order.
	Encoding string
	// Body is a template for the whole request body, for APIs that want
	// more than Params can say, such as nested JSON. Give Params or Body,
	// not both. Empty means no body unless Params make one.
	Body string
	// ContentType is the Content-Type of Body. Empty means
	// "text/plain; charset=utf-8"; a JSON body wants "application/json".
	ContentType string
	// Username and Password, when either is set, go in an HTTP basic
	// Authorization header. Empty means no basic auth.
	Username, Password string
	// Success lists the status codes that mean the provider took the
	// message. Empty means any 2xx.
	Success []int
	// Timeout bounds each Send: connecting, the request and reading the
	// response. Zero means 10s.
	Timeout time.Duration
}

// HTTP is a provider that makes one templated HTTP request per message.
// It is safe for concurrent use.
type HTTP struct {
	name        string
	method      string
	url         *template.Template
	headers     []field // sorted by name
	params      []field // sorted by name
	encoding    string
	body        *template.Template // nil means no body template
	contentType string
	username    string
	password    string
	success     []int
	timeout     time.Duration
	client      *http.Client
}

// field is a named template: one header or one parameter.
type field struct {
	name string
	t    *template.Template
}

// maxResponse is how much of a response body Send reads, and ignores, so
// the connection can be used again.
const maxResponse = 64 << 10

// defaultTimeout bounds a Send when the configuration does not.
const defaultTimeout = 10 * time.Second

// NewHTTP returns a provider called name that sends through the API c
// describes. It parses and tries every template, so a mistake shows at
// startup; its errors start with the field at fault, as in
// "headers.Authorization: template: …". A nil client means one that does
// not follow redirects: a provider answering 3xx has moved, and following
// it would turn a POST into a GET, so the status counts as a failure unless
// Success lists it.
func NewHTTP(name string, c HTTPConfig, client *http.Client) (*HTTP, error) {
	h := &HTTP{
		name:        name,
		method:      strings.ToUpper(c.Method),
		encoding:    c.Encoding,
		contentType: c.ContentType,
		username:    c.Username,
		password:    c.Password,
		success:     slices.Clone(c.Success),
		timeout:     c.Timeout,
		client:      client,
	}
	if h.method == "" {
		h.method = http.MethodPost
	}
	if h.timeout == 0 {
		h.timeout = defaultTimeout
	}
	if h.client == nil {
		h.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	bodiless := h.method == http.MethodGet || h.method == http.MethodHead

	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !isToken(h.method) {
		fail("method: %q is not an HTTP method", c.Method)
	}
	if c.URL == "" {
		fail("url: is missing")
	} else if t, err := parseTemplate("url", c.URL); err != nil {
		fail("url: %w", err)
	} else {
		h.url = t
		if err := checkURL(t); err != nil {
			fail("url: %w", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		path := "headers." + name
		canon := http.CanonicalHeaderKey(name)
		t, err := parseTemplate(path, c.Headers[name])
		switch {
		case !isToken(name):
			fail("%s: %q is not a header name", path, name)
		case slices.ContainsFunc(h.headers, func(f field) bool { return f.name == canon }):
			fail("%s: %s is given twice", path, canon)
		case err != nil:
			fail("%s: %w", path, err)
		default:
			h.headers = append(h.headers, field{canon, t})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Params)) {
		path := "params." + name
		if t, err := parseTemplate(path, c.Params[name]); err != nil {
			fail("%s: %w", path, err)
		} else {
			h.params = append(h.params, field{name, t})
		}
	}
	if c.Body != "" {
		if t, err := parseTemplate("body", c.Body); err != nil {
			fail("body: %w", err)
		} else {
			h.body = t
		}
	}

	switch h.encoding {
	case "":
		if len(c.Params) > 0 && bodiless {
			h.encoding = "query"
		} else if len(c.Params) > 0 {
			h.encoding = "form"
		}
	case "form", "json", "query":
	default:
		fail("encoding: %q is not form, json or query", c.Encoding)
	}
	switch {
	case c.Body != "" && len(c.Params) > 0:
		fail("body: give params or body, not both")
	case c.Body != "" && c.Encoding != "":
		fail("encoding: says how params are sent; a body is sent as written, with content_type")
	case c.Body != "" && bodiless:
		fail("body: a %s request has no body", h.method)
	case (h.encoding == "form" || h.encoding == "json") && bodiless:
		fail("encoding: %s puts params in a body, and a %s request has none; use query", h.encoding, h.method)
	}
	if c.ContentType != "" && c.Body == "" {
		fail("content_type: is the type of body, and there is no body; set a Content-Type header instead")
	}
	if h.contentType == "" {
		h.contentType = "text/plain; charset=utf-8"
	}
	if (c.Username != "" || c.Password != "") && slices.ContainsFunc(h.headers, func(f field) bool { return f.name == "Authorization" }) {
		fail("username: basic auth and an Authorization header are both set")
	}
	for _, code := range c.Success {
		if code < 100 || code > 599 {
			fail("success: %d is not an HTTP status code", code)
		}
	}
	if c.Timeout < 0 {
		fail("timeout: %s is negative", c.Timeout)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return h, nil
}

// checkURL renders the URL template on the sample message and reports
// whether the result could be sent to. Its errors do not repeat the URL,
// which may hold an API key.
func checkURL(t *template.Template) error {
	s, err := render(t, sampleMessage())
	if err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("does not parse as a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

// Name is the name the provider was made with.
func (h *HTTP) Name() string { return h.name }

// Send makes the request for m and returns nil when the provider answers
// with an accepted status. Its errors name the method, the scheme and host,
// and the status or what went wrong on the way; never the message, the
// code, the full URL, header values or anything the provider answered.
func (h *HTTP) Send(ctx context.Context, m Message) error {
	ctx, cancel := context.WithTimeoutCause(ctx, h.timeout, timeoutError(h.timeout))
	defer cancel()
	req, err := h.request(ctx, m)
	if err != nil {
		return redactError(err, m)
	}
	op := fmt.Sprintf("%s to %s://%s", strings.ToLower(h.method), req.URL.Scheme, req.URL.Host)
	resp, err := h.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return fmt.Errorf("%s: %w", op, cause)
		}
		// A *url.Error repeats the URL; what it wraps says what went wrong.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", op, redactError(err, m))
	}
	defer resp.Body.Close()
	// Only the status counts. A body that then fails to arrive does not undo
	// a delivery, and calling it a failure would have a Chain send the code
	// again by another provider.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	if !h.accepted(resp.StatusCode) {
		return fmt.Errorf("%s: status %d", op, resp.StatusCode)
	}
	return nil
}

// accepted reports whether status means the provider took the message.
func (h *HTTP) accepted(status int) bool {
	if len(h.success) == 0 {
		return status >= 200 && status <= 299
	}
	return slices.Contains(h.success, status)
}

// request renders the templates for m into a request.
func (h *HTTP) request(ctx context.Context, m Message) (*http.Request, error) {
	s, err := render(h.url, m)
	if err != nil {
		return nil, fmt.Errorf("render url: %w", err)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		// The parse error would quote part of the URL.
		return nil, errors.New("render url: the result is not a URL; escape inserted values with urlquery or pathescape")
	}
	var body []byte
	contentType := ""
	if len(h.params) > 0 || h.encoding == "json" {
		params := map[string]string{}
		for _, p := range h.params {
			v, err := render(p.t, m)
			if err != nil {
				return nil, fmt.Errorf("render params.%s: %w", p.name, err)
			}
			params[p.name] = v
		}
		switch h.encoding {
		case "query":
			if q := values(params).Encode(); u.RawQuery == "" {
				u.RawQuery = q
			} else if q != "" {
				u.RawQuery += "&" + q
			}
		case "form":
			body, contentType = []byte(values(params).Encode()), "application/x-www-form-urlencoded"
		case "json":
			body, _ = json.Marshal(params) // a map of strings always encodes, in key order
			contentType = "application/json"
		}
	}
	if h.body != nil {
		s, err := render(h.body, m)
		if err != nil {
			return nil, fmt.Errorf("render body: %w", err)
		}
		body, contentType = []byte(s), h.contentType
	}

	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, h.method, u.String(), r)
	if err != nil {
		return nil, errors.New("build request: the rendered URL is not usable")
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if h.username != "" || h.password != "" {
		req.SetBasicAuth(h.username, h.password)
	}
	for _, f := range h.headers {
		v, err := render(f.t, m)
		if err != nil {
			return nil, fmt.Errorf("render headers.%s: %w", f.name, err)
		}
		if !validHeaderValue(v) {
			return nil, fmt.Errorf("render headers.%s: the result holds a control character", f.name)
		}
		req.Header.Set(f.name, v)
	}
	return req, nil
}

// values turns params into url.Values, whose Encode sorts by key.
func values(params map[string]string) url.Values {
	v := make(url.Values, len(params))
	for k, s := range params {
		v.Set(k, s)
	}
	return v
}

// isToken reports whether s is an RFC 9110 token, as methods and header
// names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v can be sent as a header value: no
// control characters but tab.
func validHeaderValue(v string) bool {
	for _, c := range []byte(v) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
