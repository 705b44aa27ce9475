package session

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// Hooks hear what happens while a session is opened, and when a session
// opened ends. Any field may be nil, and so may a *Hooks. Every hook but
// Closed is given the context of the Open it reports on.
type Hooks struct {
	// Stage: a stage ended, at end, with err (an *Error) or nil.
	Stage func(ctx context.Context, stage string, start, end time.Time, err error)
	// Skip: a stage was not needed, for the reason given.
	Skip func(ctx context.Context, stage, why string)
	// Connected: the connection to remote is open.
	Connected func(ctx context.Context, remote string)
	// Greeting: the first line of the server's greeting, after the code.
	Greeting func(ctx context.Context, text string)
	// Extensions: the EHLO reply's lines after the first.
	Extensions func(ctx context.Context, lines []string)
	// TLS: a TLS handshake completed.
	TLS func(ctx context.Context, st *tls.ConnectionState)
	// Opened: Open returned a session. Closed: that session's connection
	// was closed, once, whoever closed it.
	Opened func(ctx context.Context)
	Closed func()
}

func (h *Hooks) stage(ctx context.Context, stage string, start, end time.Time, err error) {
	if h != nil && h.Stage != nil {
		h.Stage(ctx, stage, start, end, err)
	}
}

func (h *Hooks) skip(ctx context.Context, stage, why string) {
	if h != nil && h.Skip != nil {
		h.Skip(ctx, stage, why)
	}
}

func (h *Hooks) connected(ctx context.Context, remote string) {
	if h != nil && h.Connected != nil {
		h.Connected(ctx, remote)
	}
}

func (h *Hooks) greeting(ctx context.Context, text string) {
	if h != nil && h.Greeting != nil {
		h.Greeting(ctx, text)
	}
}

func (h *Hooks) extensions(ctx context.Context, lines []string) {
	if h != nil && h.Extensions != nil {
		h.Extensions(ctx, lines)
	}
}

func (h *Hooks) tls(ctx context.Context, st *tls.ConnectionState) {
	if h != nil && h.TLS != nil {
		h.TLS(ctx, st)
	}
}

// opened reports s as open; it is reported closed when its connection is.
func (h *Hooks) opened(ctx context.Context, s *Session) {
	if h != nil && h.Opened != nil {
		s.counted = true
		h.Opened(ctx)
	}
}

// closed reports the end of a session reported open, once.
func (h *Hooks) closed(s *Session) {
	if s.counted && h.Closed != nil {
		s.counted = false
		h.Closed()
	}
}

// Stage reports a stage run on the session by its user (AUTH, a probe).
func (s *Session) Stage(ctx context.Context, stage string, start time.Time, err error) {
	s.hooks.stage(ctx, stage, start, time.Now(), err)
}

// Skip reports a stage its user did not need.
func (s *Session) Skip(ctx context.Context, stage, why string) { s.hooks.skip(ctx, stage, why) }

// Auth runs AUTH with c, whose secret (a password or a token) and every
// response are redacted from whatever the server says afterwards. go-smtp's
// abort of a failed exchange is answered by the Tap when the server has
// already ended it.
func (s *Session) Auth(mech string, c sasl.Client, secret string) error {
	if len(secret) >= 4 {
		s.secrets = append(s.secrets, secret, base64.StdEncoding.EncodeToString([]byte(secret)))
	}
	s.tap.AnswerAbort = true
	err := s.Client.Auth(recorder{c, s})
	s.tap.AnswerAbort = false
	if err == nil {
		s.Mechanism = mech
	}
	return err
}

// recorder is a SASL client that remembers every response it gives, so
// that the session can redact them in whatever the server says back.
type recorder struct {
	sasl.Client
	s *Session
}

func (c recorder) Start() (string, []byte, error) {
	mech, ir, err := c.Client.Start()
	c.s.sent(ir)
	return mech, ir, err
}

func (c recorder) Next(challenge []byte) ([]byte, error) {
	resp, err := c.Client.Next(challenge)
	c.s.sent(resp)
	return resp, err
}

// sent adds an AUTH response as it went on the wire (base64) to what is
// redacted.
func (s *Session) sent(resp []byte) {
	if len(resp) > 0 {
		s.secrets = append(s.secrets, base64.StdEncoding.EncodeToString(resp))
	}
}

// Scrub replaces every credential the session sent with "[redacted]" in
// text the server wrote: a server that quotes the AUTH line back, or the
// password, reveals nothing through an error, a report or a log.
func (s *Session) Scrub(text string) string {
	for _, sec := range s.secrets {
		text = strings.ReplaceAll(text, sec, "[redacted]")
	}
	return text
}

// onClient and onServer see the plaintext session.
func (s *Session) onClient(p []byte) {
	if s.capture != nil {
		s.capture.client(p)
	}
	if s.rec != nil {
		s.rec.Client(p)
	}
}

func (s *Session) onServer(p []byte) {
	if s.capture != nil {
		s.capture.server(p)
	}
	if s.rec != nil {
		s.rec.Server(p)
	}
}

// capture reads the greeting and the reply to the last EHLO the client
// sent as they pass: go-smtp keeps the extensions to itself, with their
// keywords in the server's case.
type capture struct {
	active    bool
	partial   []byte
	lines     []string
	firstSent time.Time // when the client first wrote (the greeting was read)
	greeting  string
	done      bool
}

// maxEHLOLines is the number of EHLO reply lines kept: far more than any
// server sends (Postfix sends about 12).
const maxEHLOLines = 1000

func (c *capture) client(p []byte) {
	if c.firstSent.IsZero() {
		c.firstSent = time.Now()
	}
	if len(p) >= 5 && (strings.EqualFold(string(p[:5]), "EHLO ") || strings.EqualFold(string(p[:5]), "HELO ")) {
		c.active, c.partial, c.lines, c.done = true, nil, nil, false
	}
}

func (c *capture) server(p []byte) {
	greeting := c.firstSent.IsZero() && c.greeting == ""
	if !c.active && !greeting {
		return
	}
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			return
		}
		line := strings.TrimRight(string(c.partial[:i]), "\r")
		c.partial = c.partial[i+1:]
		if greeting {
			c.greeting = strings.TrimSpace(line[min(4, len(line)):])
			c.partial = nil
			return
		}
		// The reply's size is bounded by the connection's reply limit; the
		// lines kept are bounded too, and the end of the reply is still
		// found after them.
		final := len(line) < 4 || line[3] != '-'
		if len(c.lines) < maxEHLOLines || final {
			c.lines = append(c.lines, line)
		}
		if final {
			c.active, c.done = false, true
			return
		}
	}
}

// extensions parses the captured EHLO reply.
func (c *capture) extensions() (map[string]string, []string) {
	ext := make(map[string]string)
	var lines []string
	if !c.done || len(c.lines) == 0 || !strings.HasPrefix(c.lines[0], "250") {
		return ext, nil
	}
	for _, l := range c.lines[1:] {
		if len(l) < 4 {
			continue
		}
		kv := strings.TrimSpace(l[4:])
		lines = append(lines, kv)
		k, v, _ := strings.Cut(kv, " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext, lines
}
