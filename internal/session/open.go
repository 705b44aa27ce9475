package session

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/dialguard"
	"github.com/emailconn/emailconn/internal/smtpconn"
)

// reach resolves the host and connects to its addresses in turn, within
// phaseCtx.
func (cfg *Config) reach(ctx, phaseCtx context.Context) (net.Conn, error) {
	h := cfg.Hooks
	t := time.Now()
	var addrs []netip.Addr
	var err error
	if a, perr := netip.ParseAddr(cfg.Host); perr == nil {
		addrs = []netip.Addr{a}
		h.skip(ctx, StageResolve, "the mail server is an IP address")
	} else {
		addrs, err = cfg.resolve(phaseCtx)
		if err != nil {
			return nil, cfg.dialFailed(ctx, phaseCtx, StageResolve, t, err)
		}
		h.stage(ctx, StageResolve, t, time.Now(), nil)
	}
	t = time.Now()
	raw, err := cfg.connect(phaseCtx, addrs)
	if err != nil {
		return nil, cfg.dialFailed(ctx, phaseCtx, StageConnect, t, err)
	}
	h.stage(ctx, StageConnect, t, time.Now(), nil)
	return raw, nil
}

// dialFailed reports a failure to resolve or connect: when the connect
// timeout ended it, that is the cause.
func (cfg *Config) dialFailed(ctx, phaseCtx context.Context, stage string, start time.Time, err error) error {
	if ctx.Err() == nil && phaseCtx.Err() != nil {
		err = ErrPhaseTimeout
	}
	e := &Error{Stage: stage, Err: err}
	cfg.Hooks.stage(ctx, stage, start, time.Now(), e)
	return e
}

func (cfg *Config) resolve(ctx context.Context) ([]netip.Addr, error) {
	lookup := cfg.Lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := lookup(ctx, cfg.Host)
	if err == nil && len(addrs) == 0 {
		err = &net.DNSError{Err: "no addresses", Name: cfg.Host, IsNotFound: true}
	}
	return addrs, err
}

// connect dials the addresses in turn until one answers. Under a dial
// policy, every address is checked before it is dialled (and again by a
// guarded dialer at connect time).
func (cfg *Config) connect(ctx context.Context, addrs []netip.Addr) (net.Conn, error) {
	var firstErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(cfg.Port))
		if g := cfg.Guard; g != nil {
			if err := g.Check(ap); err != nil {
				if cfg.OnBlocked != nil {
					cfg.OnBlocked(ctx, ap, g.Reason(ap))
				}
				firstErr = firstOf(firstErr, dialguard.ErrBlocked)
				continue
			}
		}
		c, err := cfg.Dial(ctx, "tcp", ap.String())
		if err == nil {
			return c, nil
		}
		firstErr = firstOf(firstErr, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// firstOf returns the first non-nil error.
func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// establish runs the TLS mode's opening of the session up to a usable,
// secured EHLO.
func (s *Session) establish(ctx context.Context) error {
	switch s.cfg.Mode {
	case ModeImplicit:
		t := time.Now()
		// The handshake is the server's first reply: SendTimeout bounds it
		// as it bounds a greeting, whether or not ConnectTimeout is set.
		s.Conn.StartReply()
		tc := tls.Client(s.Conn, s.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return s.failStage(ctx, StageTLS, t, err)
		}
		s.hooks.stage(ctx, StageTLS, t, time.Now(), nil)
		s.secured(ctx, tc)
		return s.hello(ctx, tc, true)
	case ModeNone:
		return s.hello(ctx, s.Conn, true)
	}
	if err := s.hello(ctx, s.Conn, true); err != nil {
		return err
	}
	return s.startTLS(ctx)
}

func (s *Session) secured(ctx context.Context, tc *tls.Conn) {
	st := tc.ConnectionState()
	s.TLS = &st
	s.hooks.tls(ctx, &st)
}

// hello hands the connection to go-smtp and says EHLO. first says whether
// the server's greeting is still to be read; after STARTTLS it is not, and
// go-smtp is given a greeting that stands for it.
func (s *Session) hello(ctx context.Context, conn net.Conn, first bool) error {
	var greeting []byte
	if !first {
		greeting = []byte("220 " + s.cfg.Host + " ESMTP\r\n")
		s.capture = &capture{firstSent: time.Now()}
	}
	s.tap = &smtpconn.Tap{Conn: conn, Prefix: greeting, OnClient: s.onClient, OnServer: s.onServer, Greeting: first}
	s.br, s.tr, s.bw = nil, nil, nil
	c := smtp.NewClient(s.tap)
	// Any non-zero value: the wrapped connection replaces go-smtp's
	// deadlines with the connection's own timeouts.
	c.CommandTimeout = time.Hour
	c.SubmissionTimeout = time.Hour
	s.Client = c
	t := time.Now()
	name := s.cfg.LocalName
	err := c.Hello(name)
	var e error
	switch {
	case err != nil && !first:
		return s.Fail(StageSTARTTLS, err) // the EHLO after STARTTLS belongs to it
	case err != nil && s.capture.firstSent.IsZero():
		return s.failStage(ctx, StageGreeting, t, err)
	case err != nil:
		e = s.Fail(StageEHLO, err)
	}
	if first {
		s.hooks.stage(ctx, StageGreeting, t, s.capture.firstSent, nil)
		s.hooks.greeting(ctx, s.capture.greeting)
		s.hooks.stage(ctx, StageEHLO, s.capture.firstSent, time.Now(), e)
	}
	if e != nil {
		return e
	}
	s.ext, s.lines = s.capture.extensions()
	s.hooks.extensions(ctx, s.lines)
	return nil
}

// startTLS says STARTTLS, when the server offers it, forces the handshake
// and says EHLO again. The stage is reported here, once.
func (s *Session) startTLS(ctx context.Context) error {
	t := time.Now()
	skip, err := s.negotiateTLS(ctx)
	if skip != "" {
		s.hooks.skip(ctx, StageSTARTTLS, skip)
		return nil
	}
	if err != nil {
		err = s.Fail(StageSTARTTLS, err)
	}
	s.hooks.stage(ctx, StageSTARTTLS, t, time.Now(), err)
	return err
}

// negotiateTLS runs STARTTLS up to the EHLO inside TLS. skip, when not "",
// says why opportunistic mode goes on in plaintext.
func (s *Session) negotiateTLS(ctx context.Context) (skip string, err error) {
	if !s.Has("STARTTLS") {
		if s.cfg.Mode == ModeStartTLS {
			return "", &Error{Stage: StageSTARTTLS, Err: ErrNoSTARTTLS, Remote: s.Remote, Usable: true}
		}
		return "the server does not offer STARTTLS (opportunistic mode continues in plaintext)", nil
	}
	// Bytes after the EHLO reply, or after the reply to STARTTLS, were not
	// asked for: a man in the middle may have injected them to be read as
	// replies inside TLS.
	injected := len(s.capture.partial) > 0
	br := bufio.NewReader(s.tap)
	s.Conn.StartReply()
	_, err = s.tap.Write([]byte("STARTTLS\r\n"))
	if err == nil {
		err = readReply(br, 220)
	}
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se) && s.cfg.Mode == ModeOpportunistic && !injected && br.Buffered() == 0:
		return fmt.Sprintf("the server refused STARTTLS (%s); opportunistic mode continues in plaintext",
			ReplyText(se.Code, [3]int(se.EnhancedCode), se.Message)), nil
	case err != nil:
		return "", err
	case injected || br.Buffered() > 0 || s.tap.Buffered() > 0:
		return "", ErrInjection
	}
	tc := tls.Client(s.Conn, s.cfg.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return "", err
	}
	s.secured(ctx, tc)
	return "", s.hello(ctx, tc, false)
}

// readReply reads one reply, which must have the code want, as go-smtp
// reads its replies.
func readReply(br *bufio.Reader, want int) error {
	_, _, err := textproto.NewReader(br).ReadResponse(want)
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	return toSMTPError(te.Code, te.Msg)
}

// toSMTPError is a reply as go-smtp's client returns a failure: the
// enhanced code, when the text starts with one, taken out of the text.
func toSMTPError(code int, text string) *smtp.SMTPError {
	se := &smtp.SMTPError{Code: code, Message: text}
	enh, rest, _ := strings.Cut(text, " ")
	var ec smtp.EnhancedCode
	parts := strings.Split(enh, ".")
	for i := 0; len(parts) == 3 && i < 3; i++ {
		n, aerr := strconv.Atoi(parts[i])
		if aerr != nil {
			return se
		}
		ec[i] = n
	}
	if len(parts) == 3 {
		se.EnhancedCode = ec
		se.Message = strings.ReplaceAll(rest, "\n"+enh+" ", "\n")
	}
	return se
}

// ReplyText formats a reply as the server sent it, for example
// "550 5.1.1 no such user"; enh is all zero when the server sent no
// enhanced code.
func ReplyText(code int, enh [3]int, msg string) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(code))
	if enh != [3]int{} && enh != [3]int(smtp.NoEnhancedCode) {
		fmt.Fprintf(&b, " %d.%d.%d", enh[0], enh[1], enh[2])
	}
	if msg != "" {
		b.WriteByte(' ')
		b.WriteString(strings.ReplaceAll(msg, "\n", " "))
	}
	return b.String()
}
