package compose

import (
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits that Validate enforces, in octets.
const (
	// maxHeaderKey bounds a custom field name, so that the name and a
	// word fit the first line of the field. RFC 5322 sets no limit of its
	// own.
	maxHeaderKey = 64
	// maxFilename is the usual file system limit of a file name.
	maxFilename = 255
	// maxMessageID bounds a Message-ID or Content-ID.
	maxMessageID = 250
)

// A FieldError reports a problem with one field of a Message.
type FieldError struct {
	// Field names the field as a Go caller knows it: "Subject", "To[1]",
	// "Attachments[0].Filename", and a custom header by its key,
	// `Headers["X-Workflow-Id"]` (a problem with its value says "value").
	Field string
	// Err says what is wrong. It is an *AddressError for an address.
	Err error
}

// Error returns Field and Err, for example "Subject: contains CR or LF".
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// ownFields are the header fields the composer writes itself, by
// canonical key, with their usual spelling and the Message field that sets
// each ("" for the MIME fields, which follow from the bodies and
// attachments). A custom Header may use none of them, and no Bcc: it
// would show the blind copies to every recipient. Any other field,
// Content-Language or Content-Description for example, may be set.
var ownFields = map[string][2]string{
	"From":                      {"From", "From"},
	"To":                        {"To", "To"},
	"Cc":                        {"Cc", "Cc"},
	"Reply-To":                  {"Reply-To", "ReplyTo"},
	"Subject":                   {"Subject", "Subject"},
	"Date":                      {"Date", "Date"},
	"Message-Id":                {"Message-ID", "MessageID"},
	"Mime-Version":              {"MIME-Version", ""},
	"Content-Type":              {"Content-Type", ""},
	"Content-Transfer-Encoding": {"Content-Transfer-Encoding", ""},
	"Content-Disposition":       {"Content-Disposition", ""},
	"Content-Id":                {"Content-ID", ""},
}

// Validate reports every problem that would stop WriteTo, joined with
// errors.Join; each is a *FieldError that names the field. It returns nil if
// m can be written.
//
//   - From is required, and Date (year 1900 to 9999) and MessageID
//     (id-left@id-right of ASCII dot-atom text, at most 250 octets).
//   - Every address in From, To, Cc and ReplyTo must pass ValidateEnvelope,
//     with non-ASCII allowed only when UTF8Headers is set; nil entries are
//     refused.
//   - Header text (Subject, display names, Header values, Filename) must be
//     valid UTF-8 without CR, LF, NUL or any other control character but
//     tab, and must not already contain RFC 2047 encoded-words (pass decoded
//     text: WriteTo encodes). A display name or Header value must not hold
//     a word (a run without spaces or tabs) that, formatted and with the
//     field name, exceeds 998 octets, because it could not be folded; a
//     Subject may, since WriteTo writes such a word as encoded-words.
//   - A Header Key must be 1 to 64 RFC 9110 token characters (the part of
//     RFC 5322's ftext that net/textproto accepts) and not a field WriteTo
//     writes itself: From, To, Cc, Reply-To, Subject, Date, Message-ID,
//     MIME-Version, Content-Type, Content-Transfer-Encoding,
//     Content-Disposition or Content-ID; nor Bcc, which would show the
//     blind copies. Other fields, Content-Language for one, may be set.
//   - Text and HTML must be valid UTF-8; any line endings are fine.
//   - An attachment needs Content; a Filename of at most 255 octets; a
//     ContentType that parses, is not multipart/* or message/*, and has no
//     charset but utf-8 or us-ascii. An Inline one needs HTML and a
//     ContentID. A ContentID is ASCII dot-atom text with at most one "@",
//     at most 250 octets, without "<" or ">", and unique.
//
// Validate reads no attachment Content and does not modify m.
func (m *Message) Validate() error {
	var errs []error
	bad := func(field string, err error) {
		errs = append(errs, &FieldError{Field: field, Err: err})
	}
	badf := func(field, format string, args ...any) {
		bad(field, fmt.Errorf(format, args...))
	}

	if m.From == nil {
		badf("From", "is required")
	}
	if m.Date.IsZero() {
		badf("Date", "is required")
	} else if y := m.Date.Year(); y < 1900 || y > 9999 {
		badf("Date", "year %d is out of range (1900 to 9999)", y)
	}
	if p := msgIDProblem(m.MessageID, true); p != "" {
		badf("MessageID", "%s", p)
	}
	m.validateAddresses("From", []*mail.Address{m.From}, false, bad)
	m.validateAddresses("To", m.To, true, bad)
	m.validateAddresses("Cc", m.Cc, true, bad)
	m.validateAddresses("ReplyTo", m.ReplyTo, true, bad)
	if p := textProblem(m.Subject); p != "" {
		badf("Subject", "%s", p)
	}
	for _, h := range m.Headers {
		field := headerField(h.Key)
		if p := headerKeyProblem(h.Key); p != "" {
			badf(field, "%s", p)
		}
		if p := textProblem(h.Value); p != "" {
			badf(field, "value %s", p)
		}
	}
	if !utf8.ValidString(m.Text) {
		badf("Text", "is not valid UTF-8")
	}
	if !utf8.ValidString(m.HTML) {
		badf("HTML", "is not valid UTF-8")
	}
	cids := map[string]int{}
	for i := range m.Attachments {
		a := &m.Attachments[i]
		field := indexed("Attachments", i)
		if a.Content == nil {
			badf(field+".Content", "is required")
		}
		if p := textProblem(a.Filename); p != "" {
			badf(field+".Filename", "%s", p)
		} else if len(a.Filename) > maxFilename {
			badf(field+".Filename", "is longer than %d octets", maxFilename)
		}
		if a.ContentType != "" {
			if p := mediaTypeProblem(a.ContentType); p != "" {
				badf(field+".ContentType", "%s", p)
			}
		}
		if a.Inline && a.ContentID == "" {
			badf(field+".ContentID", "is required for an inline attachment")
		}
		if a.Inline && m.HTML == "" {
			badf(field+".Inline", "needs an HTML body to show the image")
		}
		if a.ContentID != "" {
			if p := msgIDProblem(a.ContentID, false); p != "" {
				badf(field+".ContentID", "%s", p)
			} else if j, dup := cids[a.ContentID]; dup {
				badf(field+".ContentID", "%q is already used by Attachments[%d]", a.ContentID, j)
			} else {
				cids[a.ContentID] = i
			}
		}
	}
	if len(errs) == 0 {
		// The values are well-formed; check that every word fits a line,
		// and blame the field the word comes from.
		foldCheck := func(field, key, value string) {
			if p := foldProblem(key, value); p != "" {
				badf(field, "%s", p)
			}
		}
		foldCheck("Subject", "Subject", subjectValue(m.Subject))
		for _, l := range m.addressFields() {
			for i, a := range normalizeAddresses(l.addrs) {
				field := l.name
				if l.name != "From" {
					field = indexed(l.name, i)
				}
				foldCheck(field+".Name", l.key, a.String()+",")
			}
		}
		for _, c := range m.Headers {
			if p := foldProblem(c.Key, headerValue(c.Value)); p != "" {
				badf(headerField(c.Key), "value %s", p)
			}
		}
		for i := range m.Attachments {
			for _, f := range attachmentPart(&m.Attachments[i]).fields {
				foldCheck(indexed("Attachments", i)+".Filename", f.key, f.value)
			}
		}
	}
	return errors.Join(errs...)
}

// validateAddresses validates a list of header addresses named field.
func (m *Message) validateAddresses(field string, addrs []*mail.Address, list bool, bad func(string, error)) {
	for i, a := range addrs {
		f := field
		if list {
			f = indexed(field, i)
		}
		if a == nil {
			if list {
				bad(f, errors.New("is nil"))
			}
			continue
		}
		if !m.UTF8Headers && NeedsSMTPUTF8(a.Address) {
			bad(f, &AddressError{Addr: a.Address, Reason: "contains non-ASCII characters, which need SMTPUTF8 and UTF8Headers"})
		} else if err := ValidateEnvelope(a.Address, m.UTF8Headers); err != nil {
			bad(f, err)
		}
		if p := textProblem(a.Name); p != "" {
			bad(f+".Name", errors.New(p))
		}
	}
}

// headerField names a custom header as a caller knows it, by its key:
// Headers["X-Workflow-Id"]. A very long key is cut.
func headerField(key string) string {
	const show = 64
	if len(key) > show {
		return "Headers[" + strconv.Quote(key[:show]) + "…]"
	}
	return "Headers[" + strconv.Quote(key) + "]"
}

// indexed returns "name[i]".
func indexed(name string, i int) string {
	return name + "[" + strconv.Itoa(i) + "]"
}

// textProblem says what makes s unusable as header text, or "".
func textProblem(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return "contains CR or LF"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains NUL"
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if r != '\t' && unicode.IsControl(r) {
			return fmt.Sprintf("contains control character %U", r)
		}
	}
	if strings.Contains(s, "=?") {
		n := normalizeSpace(s)
		if dec, err := new(mime.WordDecoder).DecodeHeader(n); err != nil || dec != n {
			return "contains an RFC 2047 encoded-word (=?…?=): pass the decoded text, which the composer encodes itself"
		}
	}
	return ""
}

// headerKeyProblem says what makes k unusable as a custom field name, or "".
func headerKeyProblem(k string) string {
	const notName = "is not a valid header field name: "
	if k == "" {
		return notName + "the name is empty"
	}
	if len(k) > maxHeaderKey {
		return fmt.Sprintf(notName+"the name is longer than %d octets", maxHeaderKey)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !isTchar(c) {
			return fmt.Sprintf(notName+"it contains %q (a field name is letters, digits and !#$%%&'*+-.^_`|~)", string(c))
		}
	}
	ck := canonicalKey(k)
	if ck == "Bcc" {
		return "cannot be set: a Bcc field would show the blind copies to every recipient (put them in Bcc, which goes to the envelope only)"
	}
	if f, ok := ownFields[ck]; ok {
		if f[1] == "" {
			return fmt.Sprintf("cannot be set: the composer writes the %s field itself, from the message's text, HTML and attachments", f[0])
		}
		return fmt.Sprintf("cannot be set: the composer writes the %s field itself (set %s instead)", f[0], f[1])
	}
	return ""
}

// canonicalKey returns the canonical form of a field name made of token
// characters: the first letter and each letter after a hyphen upper case,
// the rest lower case, as net/textproto.CanonicalMIMEHeaderKey does.
func canonicalKey(k string) string {
	b := []byte(k)
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}

// isTchar reports whether c is an RFC 9110 token character.
func isTchar(c byte) bool {
	return isLetDig(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// msgIDProblem says what makes id unusable as a Message-ID (withAt) or
// Content-ID, or "". Both are written between angle brackets.
func msgIDProblem(id string, withAt bool) string {
	if id == "" {
		return "is required"
	}
	if len(id) > maxMessageID {
		return fmt.Sprintf("is longer than %d octets", maxMessageID)
	}
	if strings.ContainsAny(id, "<>") {
		return `contains "<" or ">" (give it without angle brackets)`
	}
	left, right, found := strings.Cut(id, "@")
	if withAt && !found {
		return `has no "@" (want id-left@id-right)`
	}
	if !isDotAtom(left) || found && !isDotAtom(right) {
		return "is not ASCII dot-atom text (letters, digits, !#$%&'*+-/=?^_`{|}~ and single dots)"
	}
	return ""
}

// isDotAtom reports whether s is ASCII RFC 5322 dot-atom-text.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtext(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// mediaTypeProblem says what makes t unusable as an attachment's media
// type, or "".
func mediaTypeProblem(t string) string {
	for _, r := range t {
		if r < ' ' || r == 0x7f {
			return "contains a control character"
		}
	}
	mt, params, err := mime.ParseMediaType(t)
	if err != nil {
		return fmt.Sprintf("%q is not a valid media type (write type/subtype, such as application/pdf): %v", t, err)
	}
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" {
		return fmt.Sprintf("%q is not a valid media type (write type/subtype, such as application/pdf)", t)
	}
	if typ == "multipart" || typ == "message" {
		return fmt.Sprintf("%s/* cannot be sent base64-encoded (use application/octet-stream)", typ)
	}
	for k, v := range params {
		if strings.ContainsFunc(v, unicode.IsControl) {
			return fmt.Sprintf("parameter %q contains a control character", k)
		}
	}
	if cs, ok := params["charset"]; ok {
		switch strings.ToLower(cs) {
		case "utf-8", "us-ascii":
		default:
			return fmt.Sprintf("charset %q is not supported (only utf-8 and us-ascii)", cs)
		}
	}
	return ""
}

// foldProblem says why the field key: value cannot be folded into lines of
// at most MaxLineLength octets, or "". fold breaks lines only at spaces,
// because breaking inside a word would change the value; so every word
// must fit a line with the field name.
func foldProblem(key, value string) string {
	limit := MaxLineLength - len(key) - len(": ")
	longest := 0
	for _, w := range strings.FieldsFunc(value, isWSP) {
		longest = max(longest, len(w))
	}
	if longest > limit {
		return fmt.Sprintf("contains a word of %d octets, longer than a header line can hold with the field name (%d octets), and a word cannot be folded", longest, MaxLineLength)
	}
	return ""
}
