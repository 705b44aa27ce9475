package smtptest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// errClose ends a session; the deferred close in serve does the rest.
var errClose = errors.New("smtptest: close session")

// session is one SMTP connection. It is used by a single goroutine.
type session struct {
	srv  *Server
	id   int
	raw  net.Conn // the TCP connection
	conn net.Conn // raw, or the TLS connection over it
	br   *bufio.Reader

	isTLS     bool
	helo      string
	ehlo      bool
	authUser  string
	authMech  string
	stripped  bool
	inject    *Fault
	noService bool
	afterMsg  bool
	partial   []byte // a command line cut short by an idle deadline
	abrupt    bool   // close at once, without lingering (a fault in the body)

	inTx     bool
	from     string
	mailOpts smtp.MailOptions
	rcpts    []string
	rcptOpts []smtp.RcptOptions

	// BDAT (bdat.go): the message's chunks so far.
	bdat       []byte
	bdatSize   int64
	chunks     int
	chunkSeen  int64 // octets of the message's chunks read, for a DataBody fault
	bdatFailed bool
	bodyFault  *Fault
}

func newSession(srv *Server, id int, c net.Conn) *session {
	return &session{srv: srv, id: id, raw: c, conn: c}
}

func (s *session) serve() {
	defer s.finish()
	if s.srv.opts.TLS == Implicit {
		tc := tls.Server(s.raw, s.srv.tlsConfig)
		if err := tc.Handshake(); err != nil {
			s.logf("TLS handshake: %v", err)
			return
		}
		s.conn, s.isTLS = tc, true
	}
	s.br = bufio.NewReaderSize(s.conn, 32<<10)
	if err := s.greet(); err != nil {
		return
	}
	for {
		text, err := s.readCommand()
		if err != nil {
			return
		}
		if err := s.handle(text); err != nil {
			return
		}
	}
}

// lingerTime bounds how long finish discards what a client still sends
// after the server's FIN.
const lingerTime = 5 * time.Second

// finish closes the connection the way a careful server does: it shuts
// down the sending side first (FIN), then reads and discards what the
// client still sends until the client closes, lingerTime passes or the
// Server is closed, and only then closes the socket.
//
// Closing a socket with unread input makes the kernel send a RST instead of
// the FIN, and the RST can overtake the last reply: a client that sent its
// next command just after the server's final reply (421 … then close) would
// then read ECONNRESET instead of that reply and EOF, depending on timing.
// With the FIN sent first, what the client reads no longer depends on
// timing. A fault in the DATA body (Drop) closes at once: the client is
// still uploading, and the abrupt close is the fault.
func (s *session) finish() {
	tc, ok := s.raw.(*net.TCPConn)
	if !ok || s.abrupt || tc.CloseWrite() != nil {
		s.raw.Close()
		s.srv.sessionEnded(s.id)
		return
	}
	s.srv.sessionEnded(s.id)
	tc.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, tc)
	tc.Close()
}

func (s *session) logf(format string, args ...any) {
	if s.srv.opts.Logf != nil {
		s.srv.opts.Logf("smtptest: session %d: "+format, append([]any{s.id}, args...)...)
	}
}

// write sends b in one write.
func (s *session) write(b []byte) error {
	if s.srv.opts.Logf != nil {
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if l != "" {
				s.logf("S: %s", strings.TrimRight(l, "\r\n"))
			}
		}
	}
	_, err := s.conn.Write(b)
	return err
}

// reply sends one reply; text may hold several lines separated by "\n".
func (s *session) reply(code int, enh string, text string) error {
	lines := strings.Split(text, "\n")
	var b strings.Builder
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		b.WriteString(strconv.Itoa(code) + sep)
		if enh != "" {
			b.WriteString(enh + " ")
		}
		b.WriteString(l + "\r\n")
	}
	return s.write([]byte(b.String()))
}

func (s *session) replyError(e *smtp.SMTPError) error { return s.write(formatError(e)) }

// readLine reads one CRLF- (or LF-) terminated line of at most limit octets.
func (s *session) readLine(limit int) (string, error) {
	buf := s.partial
	s.partial = nil
	for {
		chunk, err := s.br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > limit {
			return "", errTooLong
		}
		if err == nil {
			break
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		s.partial = buf
		return "", err
	}
	text := strings.TrimSuffix(string(buf), "\n")
	return strings.TrimSuffix(text, "\r"), nil
}

var errTooLong = errors.New("smtptest: line too long")

// saslLineLimit is RFC 4954 §4's limit for a SASL response line.
const saslLineLimit = 12288

// readClientLine reads a line and records it; a too-long line is answered
// and ends the session. A SASL response (sasl) may be up to 12288 octets
// (RFC 4954 §4) even when MaxLineLength is smaller, and is not logged.
func (s *session) readClientLine(sasl bool) (string, error) {
	limit := s.srv.maxLine()
	if sasl {
		limit = max(limit, saslLineLimit)
	}
	text, err := s.readLine(limit)
	if err == errTooLong {
		s.srv.record(s.id, "<LINE TOO LONG>")
		s.logf("C: <LINE TOO LONG>")
		s.reply(500, "5.4.0", "Too long line, closing connection")
		return "", errClose
	}
	if err != nil {
		return "", err
	}
	s.srv.record(s.id, text)
	if sasl {
		s.logf("C: <redacted>")
	} else {
		s.logf("C: %s", redactAuth(text))
	}
	return text, nil
}

// redactAuth hides the initial response of an AUTH line, and any line that
// is not a command but looks like base64 (a SASL response the server read as
// a command, after a fault or a desynchronised client).
func redactAuth(text string) string {
	verb, arg, _ := strings.Cut(text, " ")
	if !strings.EqualFold(verb, "AUTH") {
		if !verbs[strings.ToUpper(verb)] && len(text) >= 4 && isBase64(text) {
			return "<redacted>"
		}
		return text
	}
	mech, ir, ok := strings.Cut(strings.TrimSpace(arg), " ")
	if !ok || ir == "" {
		return text
	}
	return verb + " " + mech + " <redacted>"
}

func isBase64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// readCommand reads the next command line, applying an Idle fault.
func (s *session) readCommand() (string, error) {
	idx := s.srv.peekFault(Idle, s.id)
	if idx < 0 {
		return s.readClientLine(false)
	}
	f := s.srv.opts.Faults[idx]
	s.conn.SetReadDeadline(time.Now().Add(f.Delay))
	defer s.conn.SetReadDeadline(time.Time{})
	for {
		text, err := s.readClientLine(false)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return text, err
		}
		if s.srv.takeIndex(idx) {
			s.logf("idle for %v, closing", f.Delay)
			if f.Reply != "" {
				s.write(wire(f.Reply))
			}
			return "", errClose
		}
		s.logf("idle for %v; the Idle fault is spent, waiting on", f.Delay)
		s.conn.SetReadDeadline(time.Time{})
	}
}

func (s *session) greet() error {
	return s.atReplyPoint(s.srv.takeFault(Greeting, false, s.id), "220",
		func() error { return s.reply(220, "", s.srv.domain()+" ESMTP smtptest ready") },
		func(f *Fault) {
			// RFC 5321 §3.1: after a refusing greeting, only QUIT.
			s.noService = f.Action == Proceed && !strings.HasPrefix(f.Reply, "2")
		})
}

// atReplyPoint runs f (which may be nil) at a reply point whose normal reply
// has the given code: either the fault sends its own reply, and replaced is
// called, or normal handles the point; then the connection is closed if the
// fault asks for it.
func (s *session) atReplyPoint(f *Fault, code string, normal func() error, replaced func(*Fault)) error {
	closeAfter := false
	if f != nil {
		done, ca, err := s.runFault(f, code)
		if err != nil {
			return err
		}
		if done {
			if replaced != nil {
				replaced(f)
			}
			if ca {
				return errClose
			}
			return nil
		}
		closeAfter = ca
	}
	if err := normal(); err != nil {
		return err
	}
	if closeAfter {
		return errClose
	}
	return nil
}

// runFault performs f at a reply point whose normal reply has the given code.
// replaced reports that the fault sent its own reply (the caller must not
// send the normal one); closeAfter that the connection must be closed after
// the reply. A non-nil error ends the session.
func (s *session) runFault(f *Fault, code string) (replaced, closeAfter bool, err error) {
	s.logf("fault at %s: %v", f.At, f.Action)
	if f.Action != Inject && !s.srv.sleep(f.Delay) {
		return false, false, errClose
	}
	switch f.Action {
	case Proceed:
		if f.Reply == "" {
			return false, f.Close, nil
		}
		if err := s.write(wire(f.Reply)); err != nil {
			return true, false, err
		}
		return true, f.Close, nil
	case Silent:
		s.drain()
		return true, false, errClose
	case Stall:
		<-s.srv.done
		return true, false, errClose
	case Drop:
		return true, false, errClose
	case Reset:
		s.resetConn()
		return true, false, errClose
	case Endless:
		s.endless(f.Reply, code)
		return true, false, errClose
	case LongLine:
		n := f.Bytes
		if n == 0 {
			n = 5000
		}
		if n < 6 {
			n = 6
		}
		b := append([]byte(code+" "), bytes.Repeat([]byte{'x'}, n-6)...)
		b = append(b, '\r', '\n')
		if err := s.write(b); err != nil {
			return true, false, err
		}
		return true, f.Close, nil
	case StripStartTLS:
		s.stripped = true
		return false, f.Close, nil
	case Inject:
		s.inject = f
		return false, f.Close, nil
	}
	return false, false, nil
}

// drain reads and records lines without replying until the connection ends,
// so that a silent server still shows what the client tried.
func (s *session) drain() {
	for {
		text, err := s.readLine(max(s.srv.maxLine(), saslLineLimit))
		switch {
		case err == errTooLong:
			s.srv.record(s.id, "<LINE TOO LONG>")
		case err != nil:
			return
		default:
			s.srv.record(s.id, text)
			s.logf("C: %s", redactAuth(text))
		}
	}
}

// resetConn aborts the connection with a RST.
func (s *session) resetConn() {
	if tc, ok := s.raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	s.raw.Close()
	s.abrupt = true
}

// endless writes a never-ending multi-line reply.
func (s *session) endless(reply, code string) {
	text := code + "-" + strings.Repeat("x", 72)
	if reply != "" {
		text, _, _ = strings.Cut(strings.TrimRight(reply, "\r\n"), "\n")
		text = strings.TrimRight(text, "\r")
	}
	chunk := bytes.Repeat([]byte(text+"\r\n"), 64)
	s.logf("S: %s (repeated until the connection ends)", text)
	for {
		select {
		case <-s.srv.done:
			return
		default:
		}
		if _, err := s.conn.Write(chunk); err != nil {
			return
		}
	}
}

// handle processes one command line.
func (s *session) handle(text string) error {
	verb, arg, _ := strings.Cut(text, " ")
	verb = strings.ToUpper(verb)
	arg = strings.TrimSpace(arg)

	if s.noService {
		if verb == "QUIT" {
			s.reply(221, "2.0.0", "Bye")
			return errClose
		}
		return s.reply(503, "5.5.1", "Error: no SMTP service here")
	}

	var f *Fault
	if s.afterMsg {
		s.afterMsg = false
		f = s.srv.takeFault(AfterMessage, false, s.id)
	}
	if f == nil {
		f = s.srv.takeFault(Point(verb), true, s.id)
	}
	defer func() { s.inject = nil }()
	if verb == "BDAT" {
		return s.cmdBdat(arg, f) // the chunk is read before any fault acts
	}
	return s.atReplyPoint(f, "250", func() error { return s.dispatch(verb, arg) }, nil)
}

func (s *session) dispatch(verb, arg string) error {
	switch verb {
	case "EHLO", "HELO":
		return s.cmdHello(verb == "EHLO", arg)
	case "STARTTLS":
		return s.cmdStartTLS(arg)
	case "AUTH":
		return s.cmdAuth(arg)
	case "MAIL":
		return s.cmdMail(arg)
	case "RCPT":
		return s.cmdRcpt(arg)
	case "DATA":
		return s.cmdData(arg)
	case "RSET":
		s.resetTx()
		return s.reply(250, "2.0.0", "OK")
	case "NOOP":
		return s.reply(250, "2.0.0", "OK")
	case "VRFY":
		return s.reply(252, "2.5.0", "Cannot VRFY user, but will accept message")
	case "QUIT":
		s.reply(221, "2.0.0", "Bye")
		return errClose
	case "EXPN", "HELP", "TURN", "SEND", "SOML", "SAML", "ETRN":
		return s.reply(502, "5.5.1", "Error: command not implemented")
	}
	return s.reply(500, "5.5.2", "Error: command not recognized")
}

func (s *session) resetTx() {
	s.inTx = false
	s.from = ""
	s.mailOpts = smtp.MailOptions{}
	s.rcpts = nil
	s.rcptOpts = nil
	s.bdat, s.bdatSize, s.chunks, s.chunkSeen, s.bdatFailed, s.bodyFault = nil, 0, 0, 0, false, nil
}

func (s *session) authAllowed() bool { return s.isTLS || !s.srv.opts.RequireTLSForAuth }

func (s *session) cmdHello(ehlo bool, arg string) error {
	if arg == "" {
		if ehlo {
			return s.reply(501, "5.5.4", "Syntax: EHLO hostname")
		}
		return s.reply(501, "5.5.4", "Syntax: HELO hostname")
	}
	s.resetTx()
	s.helo, s.ehlo = arg, ehlo
	if !ehlo {
		return s.reply(250, "", s.srv.domain())
	}
	o := &s.srv.opts
	caps := []string{s.srv.domain(), "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}
	if o.TLS == StartTLS && !s.isTLS && !s.stripped {
		caps = append(caps, "STARTTLS")
	}
	if len(s.srv.mechs) > 0 && s.authAllowed() {
		caps = append(caps, "AUTH "+strings.Join(s.srv.mechs, " "))
	}
	if o.EnableSMTPUTF8 {
		caps = append(caps, "SMTPUTF8")
	}
	if o.EnableDSN {
		caps = append(caps, "DSN")
	}
	if o.EnableCHUNKING || o.BrokenCHUNKING {
		caps = append(caps, "CHUNKING")
	}
	if o.NoPipelining {
		caps = slices.DeleteFunc(caps, func(c string) bool { return c == "PIPELINING" })
	}
	if o.MaxMessageBytes > 0 {
		caps = append(caps, "SIZE "+strconv.FormatInt(o.MaxMessageBytes, 10))
	} else {
		caps = append(caps, "SIZE")
	}
	return s.reply(250, "", strings.Join(caps, "\n"))
}

func (s *session) cmdStartTLS(arg string) error {
	switch {
	case arg != "":
		return s.reply(501, "5.5.4", "Syntax: STARTTLS")
	case s.isTLS:
		return s.reply(503, "5.5.1", "Error: TLS already active")
	case s.srv.opts.TLS != StartTLS || s.stripped:
		return s.reply(502, "5.5.1", "Error: command not implemented")
	}
	ready := []byte("220 2.0.0 Ready to start TLS\r\n")
	if f := s.inject; f != nil && f.Delay == 0 {
		ready = append(ready, wire(f.Reply)...)
	}
	if err := s.write(ready); err != nil {
		return err
	}
	if f := s.inject; f != nil && f.Delay > 0 {
		if !s.srv.sleep(f.Delay) {
			return errClose
		}
		if err := s.write(wire(f.Reply)); err != nil {
			return err
		}
	}
	// Plaintext the client pipelined after STARTTLS must not survive the
	// switch (CVE-2011-0411).
	if n := s.br.Buffered(); n > 0 {
		s.logf("discarding %d plaintext bytes sent after STARTTLS", n)
		s.br.Discard(n)
	}
	tc := tls.Server(s.raw, s.srv.tlsConfig)
	if err := tc.Handshake(); err != nil {
		s.logf("TLS handshake: %v", err)
		return errClose
	}
	s.conn, s.isTLS = tc, true
	s.br = bufio.NewReaderSize(tc, 32<<10)
	// RFC 3207 §4.2: forget everything learnt before TLS.
	s.helo, s.ehlo = "", false
	s.authUser, s.authMech = "", ""
	s.resetTx()
	return nil
}

func (s *session) cmdData(arg string) error {
	switch {
	case arg != "":
		return s.reply(501, "5.5.4", "Syntax: DATA")
	case !s.inTx:
		return s.reply(503, "5.5.1", "Error: need MAIL command")
	case len(s.rcpts) == 0:
		return s.reply(503, "5.5.1", "Error: need RCPT command")
	}
	if err := s.reply(354, "", "Go ahead, end your data with <CR><LF>.<CR><LF>"); err != nil {
		return err
	}
	data, size, tooBig, err := s.readBody(s.srv.takeFault(DataBody, false, s.id))
	if err != nil {
		s.srv.record(s.id, fmt.Sprintf("<DATA %d bytes, incomplete>", size))
		s.logf("C: <DATA %d bytes, incomplete>", size)
		return err
	}
	s.srv.record(s.id, fmt.Sprintf("<DATA %d bytes>", size))
	s.logf("C: <DATA %d bytes>", size)

	return s.queue(s.message(data, 0), tooBig)
}

// message is the message of the current transaction, with data and the
// number of BDAT chunks it came in (0 for DATA).
func (s *session) message(data []byte, chunks int) Message {
	return Message{
		From:        s.from,
		To:          s.rcpts,
		RcptOptions: s.rcptOpts,
		Data:        data,
		MailOptions: s.mailOpts,
		TLS:         s.isTLS,
		AuthUser:    s.authUser,
		Mechanism:   s.authMech,
		Helo:        s.helo,
		Session:     s.id,
		Chunks:      chunks,
	}
}

// queue ends the transaction with its whole message, msg, and replies at
// the point after the message: an AfterDot fault's reply, or 552 when the
// message was tooBig, or Options.DataHook's refusal, or 250 once msg is
// delivered.
func (s *session) queue(msg Message, tooBig bool) error {
	s.resetTx()
	accept := func() {
		s.srv.deliver(msg)
		s.afterMsg = true
	}
	return s.atReplyPoint(s.srv.takeFault(AfterDot, false, s.id), "250",
		func() error {
			var rerr *smtp.SMTPError
			if tooBig {
				rerr = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message size exceeds fixed maximum message size"}
			} else if h := s.srv.opts.DataHook; h != nil {
				rerr = callHook(s, func() *smtp.SMTPError {
					return h(msg.From, slices.Clone(msg.To), slices.Clone(msg.Data))
				})
			}
			if rerr != nil {
				return s.replyError(rerr)
			}
			accept()
			return s.reply(250, "2.0.0", fmt.Sprintf("OK: queued as S%dM%d", s.id, len(msg.Data)))
		},
		func(f *Fault) {
			if f.sendsSuccess() {
				accept()
			}
		})
}
