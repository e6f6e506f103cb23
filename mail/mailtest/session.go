package mailtest

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/textproto"
	"strings"
)

// session is one client's conversation.
type session struct {
	s       *Server
	conn    net.Conn
	tp      *textproto.Conn
	secure  bool   // the connection is TLS
	greeted bool   // EHLO or HELO since the start or STARTTLS
	auth    string // the user that authenticated
	inTx    bool   // MAIL was accepted
	from    string
	to      []string
}

// serve speaks SMTP with one client until it quits or goes away.
func (s *Server) serve(c net.Conn) {
	ss := &session{s: s, conn: c}
	if s.opts.TLS == "tls" {
		tc := tls.Server(c, s.tls)
		if tc.Handshake() != nil {
			return
		}
		ss.conn, ss.secure = tc, true
	}
	ss.tp = textproto.NewConn(ss.conn)
	if !ss.reply("220 mailtest ESMTP ready") {
		return
	}
	for {
		line, err := ss.tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		if !ss.command(strings.ToUpper(verb), strings.TrimSpace(arg)) {
			return
		}
	}
}

// reply sends one reply; every line but the last gets a "-" after the
// code. Each line is "250 text". It reports whether the client got it.
func (ss *session) reply(lines ...string) bool {
	for i, l := range lines {
		if i < len(lines)-1 {
			l = l[:3] + "-" + l[4:]
		}
		if ss.tp.PrintfLine("%s", l) != nil {
			return false
		}
	}
	return true
}

// command answers one command line and reports whether to go on.
func (ss *session) command(verb, arg string) bool {
	opts := ss.s.opts
	switch verb {
	case "EHLO", "HELO":
		if arg == "" {
			return ss.reply("501 5.5.4 " + verb + " needs a domain")
		}
		ss.greeted = true
		ss.reset()
		if verb == "HELO" {
			return ss.reply("250 mailtest")
		}
		lines := []string{"250 mailtest greets " + arg, "250 8BITMIME"}
		if opts.TLS == "starttls" && !ss.secure {
			lines = append(lines, "250 STARTTLS")
		}
		if ss.canAuth() {
			lines = append(lines, "250 AUTH PLAIN LOGIN")
		}
		return ss.reply(lines...)
	case "STARTTLS":
		switch {
		case opts.TLS != "starttls" || ss.secure:
			return ss.reply("502 5.5.1 STARTTLS not offered")
		case arg != "":
			return ss.reply("501 5.5.4 STARTTLS takes no argument")
		}
		if !ss.reply("220 2.0.0 go ahead") {
			return false
		}
		tc := tls.Server(ss.conn, ss.s.tls)
		if tc.Handshake() != nil {
			return false
		}
		// RFC 3207: everything known before TLS is forgotten.
		ss.conn, ss.secure, ss.tp = tc, true, textproto.NewConn(tc)
		ss.greeted, ss.auth = false, ""
		ss.reset()
		return true
	case "AUTH":
		switch {
		case !ss.greeted:
			return ss.reply("503 5.5.1 EHLO first")
		case !ss.canAuth():
			return ss.reply("502 5.5.1 AUTH not offered")
		case ss.auth != "":
			return ss.reply("503 5.5.1 already authenticated")
		case ss.inTx:
			return ss.reply("503 5.5.1 AUTH not within a transaction")
		}
		user, reply, err := ss.authenticate(arg)
		if err != nil {
			return false
		}
		ss.auth = user
		return ss.reply(reply)
	case "MAIL":
		switch {
		case !ss.greeted:
			return ss.reply("503 5.5.1 EHLO first")
		case opts.Username != "" && ss.auth == "":
			return ss.reply("530 5.7.0 authentication required")
		case ss.inTx:
			return ss.reply("503 5.5.1 MAIL already given")
		}
		from, ok := path(arg, "FROM:")
		if !ok {
			return ss.reply("501 5.5.4 syntax: MAIL FROM:<address>")
		}
		ss.inTx, ss.from, ss.to = true, from, nil
		return ss.reply("250 2.1.0 OK")
	case "RCPT":
		if !ss.inTx {
			return ss.reply("503 5.5.1 MAIL first")
		}
		to, ok := path(arg, "TO:")
		if !ok || to == "" {
			return ss.reply("501 5.5.4 syntax: RCPT TO:<address>")
		}
		if opts.FailRcpt {
			return ss.reply("550 5.1.1 no such mailbox")
		}
		ss.to = append(ss.to, to)
		return ss.reply("250 2.1.5 OK")
	case "DATA":
		if !ss.inTx || len(ss.to) == 0 {
			return ss.reply("503 5.5.1 MAIL and RCPT first")
		}
		if !ss.reply("354 end with <CRLF>.<CRLF>") {
			return false
		}
		data, err := ss.tp.ReadDotBytes() // undoes the dot-stuffing, ends lines with "\n"
		if err != nil {
			return false
		}
		r := Received{
			From: ss.from,
			To:   ss.to,
			Data: bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")),
			Auth: ss.auth,
			TLS:  ss.secure,
		}
		ss.reset()
		select {
		case ss.s.msgs <- r:
		case <-ss.s.done:
			return false
		}
		return ss.reply("250 2.0.0 queued")
	case "RSET":
		ss.reset()
		return ss.reply("250 2.0.0 OK")
	case "NOOP":
		return ss.reply("250 2.0.0 OK")
	case "QUIT":
		ss.reply("221 2.0.0 bye")
		return false
	}
	return ss.reply("500 5.5.2 command not recognized")
}

// reset forgets the transaction in progress.
func (ss *session) reset() { ss.inTx, ss.from, ss.to = false, "", nil }

// canAuth reports whether AUTH is offered now: when a user is configured,
// and in starttls mode only once TLS is on.
func (ss *session) canAuth() bool {
	return ss.s.opts.Username != "" && (ss.secure || ss.s.opts.TLS != "starttls")
}

// authenticate runs AUTH PLAIN or LOGIN, with or without an initial
// response, and returns the reply to send and, when the credentials are
// right, the user. An error means the client went away.
func (ss *session) authenticate(arg string) (user, reply string, err error) {
	mech, initial, _ := strings.Cut(arg, " ")
	var pass string
	switch strings.ToUpper(mech) {
	case "PLAIN":
		var raw string
		if raw, reply, err = ss.response(initial, ""); reply != "" || err != nil {
			return "", reply, err
		}
		parts := strings.Split(raw, "\x00")
		if len(parts) != 3 {
			return "", "501 5.5.2 PLAIN needs authzid NUL user NUL password", nil
		}
		user, pass = parts[1], parts[2]
	case "LOGIN":
		if user, reply, err = ss.response(initial, "Username:"); reply != "" || err != nil {
			return "", reply, err
		}
		if pass, reply, err = ss.response("", "Password:"); reply != "" || err != nil {
			return "", reply, err
		}
	case "":
		return "", "501 5.5.4 AUTH needs a mechanism", nil
	default:
		return "", "504 5.5.4 mechanism not supported", nil
	}
	if user != ss.s.opts.Username || pass != ss.s.opts.Password {
		return "", "535 5.7.8 authentication credentials invalid", nil
	}
	return user, "235 2.7.0 authenticated", nil
}

// response decodes an initial response when there is one ("=" is an empty
// one), and otherwise sends prompt as a 334 challenge and decodes the
// answer. A non-empty reply refuses what the client sent.
func (ss *session) response(initial, prompt string) (text, reply string, err error) {
	if initial == "" {
		if err := ss.tp.PrintfLine("334 %s", base64.StdEncoding.EncodeToString([]byte(prompt))); err != nil {
			return "", "", err
		}
		if initial, err = ss.tp.ReadLine(); err != nil {
			return "", "", err
		}
		if initial == "*" {
			return "", "501 5.7.0 authentication cancelled", nil
		}
	}
	if initial == "=" {
		return "", "", nil
	}
	b, err := base64.StdEncoding.DecodeString(initial)
	if err != nil {
		return "", "501 5.5.2 not base64", nil
	}
	return string(b), "", nil
}

// path takes the address out of an argument such as "FROM:<a@b> SIZE=1"
// for prefix "FROM:". The null path "<>" gives "".
func path(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	end := strings.IndexByte(rest, '>')
	if !strings.HasPrefix(rest, "<") || end < 0 {
		return "", false
	}
	return rest[1:end], true
}
