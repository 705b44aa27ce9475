package smtptest

import (
	"errors"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
)

// The envelope commands, MAIL FROM and RCPT TO, and the parsing they need.

// parsePath splits "<addr> params" (after "FROM:" or "TO:"); addr may be
// empty ("<>").
func parsePath(arg string) (addr, params string, ok bool) {
	arg = strings.TrimLeft(arg, " ")
	if !strings.HasPrefix(arg, "<") {
		return "", "", false
	}
	inQuote, escaped := false, false
	for i := 1; i < len(arg); i++ {
		c := arg[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\' && inQuote:
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == '>' && !inQuote:
			addr = arg[1:i]
			// Drop an RFC 5321 source route ("@a,@b:user@c").
			if strings.HasPrefix(addr, "@") {
				if _, rest, found := strings.Cut(addr, ":"); found {
					addr = rest
				}
			}
			return addr, strings.TrimSpace(arg[i+1:]), true
		}
	}
	return "", "", false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

func (s *session) cmdMail(arg string) error {
	o := &s.srv.opts
	switch {
	case s.helo == "":
		return s.reply(503, "5.5.1", "Error: send HELO/EHLO first")
	case s.inTx:
		return s.reply(503, "5.5.1", "Error: nested MAIL command")
	case o.RequireAuth && s.authUser == "":
		return s.reply(530, "5.7.0", "Authentication required")
	}
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		return s.reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
	}
	from, params, ok := parsePath(rest)
	if !ok {
		return s.reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
	}
	opts, refuse := mailParams(params, o)
	if refuse != nil {
		return s.replyError(refuse)
	}
	if !opts.UTF8 && !isASCII(from) {
		return s.reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
	}
	if h := o.MailHook; h != nil {
		if e := callHook(s, func() *smtp.SMTPError { return h(from) }); e != nil {
			return s.replyError(e)
		}
	}
	s.inTx, s.from, s.mailOpts = true, from, opts
	return s.reply(250, "2.1.0", "Sender <"+from+"> OK")
}

func (s *session) cmdRcpt(arg string) error {
	o := &s.srv.opts
	if !s.inTx {
		return s.reply(503, "5.5.1", "Error: need MAIL command")
	}
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		return s.reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
	}
	to, params, ok := parsePath(rest)
	if !ok || to == "" {
		return s.reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
	}
	var opts smtp.RcptOptions
	for _, p := range strings.Fields(params) {
		key, value, _ := strings.Cut(p, "=")
		switch strings.ToUpper(key) {
		case "NOTIFY":
			if !o.EnableDSN {
				return s.reply(555, "5.5.4", "Unsupported option: "+key)
			}
			for _, n := range strings.Split(value, ",") {
				switch v := smtp.DSNNotify(strings.ToUpper(n)); v {
				case smtp.DSNNotifyNever, smtp.DSNNotifyDelayed, smtp.DSNNotifyFailure, smtp.DSNNotifySuccess:
					opts.Notify = append(opts.Notify, v)
				default:
					return s.reply(501, "5.5.4", "Bad NOTIFY parameter")
				}
			}
		case "ORCPT":
			if !o.EnableDSN {
				return s.reply(555, "5.5.4", "Unsupported option: "+key)
			}
			typ, addr, ok := strings.Cut(value, ";")
			v, err := decodeXtext(addr)
			if !ok || typ == "" || err != nil || v == "" {
				return s.reply(501, "5.5.4", "Bad ORCPT parameter")
			}
			opts.OriginalRecipientType = smtp.DSNAddressType(strings.ToUpper(typ))
			opts.OriginalRecipient = v
		default:
			return s.reply(555, "5.5.4", "Unsupported option: "+key)
		}
	}
	if !s.mailOpts.UTF8 && !isASCII(to) {
		return s.reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
	}
	if h := o.RcptHook; h != nil {
		if e := callHook(s, func() *smtp.SMTPError { return h(to) }); e != nil {
			return s.replyError(e)
		}
	}
	s.rcpts = append(s.rcpts, to)
	s.rcptOpts = append(s.rcptOpts, opts)
	return s.reply(250, "2.1.5", "Recipient <"+to+"> OK")
}

// callHook runs a test's hook; a panic becomes a 451 reply and a test error.
func callHook(s *session, h func() *smtp.SMTPError) (e *smtp.SMTPError) {
	defer func() {
		if r := recover(); r != nil {
			if s.srv.t != nil {
				s.srv.t.Errorf("smtptest: hook panicked: %v", r)
			}
			e = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "smtptest: hook panicked"}
		}
	}()
	return h()
}

func decodeXtext(v string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '+' {
			b.WriteByte(v[i])
			continue
		}
		if i+2 >= len(v) {
			return "", errors.New("bad xtext")
		}
		n, err := strconv.ParseUint(v[i+1:i+3], 16, 8)
		if err != nil {
			return "", errors.New("bad xtext")
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), nil
}

// mailParams parses the parameters of MAIL FROM, or returns the reply that
// refuses them.
func mailParams(params string, o *Options) (opts smtp.MailOptions, refuse *smtp.SMTPError) {
	for _, p := range strings.Fields(params) {
		key, value, _ := strings.Cut(p, "=")
		switch strings.ToUpper(key) {
		case "SIZE":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return opts, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Bad SIZE parameter"}
			}
			if o.MaxMessageBytes > 0 && n > o.MaxMessageBytes {
				return opts, &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message size exceeds fixed maximum message size"}
			}
			opts.Size = n
		case "BODY":
			switch b := smtp.BodyType(strings.ToUpper(value)); b {
			case smtp.Body7Bit, smtp.Body8BitMIME:
				opts.Body = b
			default:
				return opts, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Bad BODY parameter"}
			}
		case "SMTPUTF8":
			if !o.EnableSMTPUTF8 || value != "" {
				return opts, &smtp.SMTPError{Code: 555, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Unsupported option: " + key}
			}
			opts.UTF8 = true
		case "RET":
			if !o.EnableDSN {
				return opts, &smtp.SMTPError{Code: 555, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Unsupported option: " + key}
			}
			switch r := smtp.DSNReturn(strings.ToUpper(value)); r {
			case smtp.DSNReturnFull, smtp.DSNReturnHeaders:
				opts.Return = r
			default:
				return opts, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Bad RET parameter"}
			}
		case "ENVID":
			if !o.EnableDSN {
				return opts, &smtp.SMTPError{Code: 555, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Unsupported option: " + key}
			}
			v, err := decodeXtext(value)
			if err != nil || v == "" {
				return opts, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Bad ENVID parameter"}
			}
			opts.EnvelopeID = v
		case "AUTH":
			v, err := decodeXtext(value)
			if err != nil || v == "" {
				return opts, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Bad AUTH parameter"}
			}
			if v == "<>" {
				v = ""
			}
			opts.Auth = &v
		default:
			return opts, &smtp.SMTPError{Code: 555, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Unsupported option: " + key}
		}
	}
	return opts, nil
}
