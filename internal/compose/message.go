package compose

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A Message is a notification email: addresses, subject, a text and/or an
// HTML body, and attachments. WriteTo turns it into an RFC 5322 / MIME
// message; Validate says what would stop it.
//
// Header text (Subject, display names, custom header values and attachment
// filenames) is written with leading and trailing spaces and tabs removed
// and each inner run of spaces and tabs made one space, because folding a
// long header line (RFC 5322 §2.2.3) does not preserve other whitespace
// reliably. Apart from that, a reader that decodes RFC 2047 encoded-words
// gets back exactly the text given.
//
// A Message is not safe for concurrent use while WriteTo runs, because
// WriteTo reads the attachments' Content.
type Message struct {
	// From is the author. Required; its Name may be empty.
	From *mail.Address
	// To and Cc are the visible recipients, written as header fields. Both
	// may be empty (a Bcc-only message then has neither field). Blind
	// copies are not part of a Message: the caller passes them to the
	// envelope only, so they never appear in the header.
	To, Cc []*mail.Address
	// ReplyTo sets the Reply-To field. Empty means no Reply-To field.
	ReplyTo []*mail.Address
	// Subject is plain text; non-ASCII text is encoded per RFC 2047 and long
	// subjects are folded. Empty means an empty Subject field.
	Subject string
	// Text is the text/plain body, UTF-8. Its line endings (CRLF, CR or
	// LF) are made CRLF and it is sent quoted-printable, so control
	// characters and NUL are encoded, never raw. Empty means no
	// text/plain part.
	Text string
	// HTML is the text/html body, sent like Text. Empty means no
	// text/html part. With both
	// Text and HTML the message is multipart/alternative; with neither and
	// no attachments it has an empty text/plain body.
	HTML string
	// Attachments are sent after the body. Inline ones are bundled with
	// the HTML in multipart/related; the others make the message
	// multipart/mixed. Empty means none.
	Attachments []Attachment
	// Headers are extra header fields, written in order after the
	// structural ones. Empty means none.
	Headers []Header
	// Date is the origination date. Required (non-zero); the caller
	// chooses the clock.
	Date time.Time
	// MessageID is the Message-ID without angle brackets, for example
	// "20261127.4f2a@host.example". Required: callers keep it to
	// deduplicate a message whose delivery is uncertain.
	MessageID string
	// UTF8Headers allows raw UTF-8 (RFC 6532) in the address fields From,
	// To, Cc and Reply-To, which an internationalised (EAI) address such
	// as "jürgen@beispiel.de" needs: such an address cannot be encoded any
	// other way. Set it only when the message is sent with SMTPUTF8; the
	// Sender typically sets it to NeedsSMTPUTF8 of the addresses.
	// Display names and the Subject stay RFC 2047-encoded either way.
	// Zero means a 7-bit header: Validate refuses non-ASCII addresses.
	UTF8Headers bool
}

// An Attachment is a file sent with a message, or an image the HTML body
// shows inline.
type Attachment struct {
	// Filename is the name suggested to the recipient, written as the
	// filename parameter of Content-Disposition and the name parameter of
	// Content-Type (which some readers use instead). A non-ASCII name is
	// written as an RFC 2231 parameter (filename*=utf-8''…, continued over
	// several lines when long), preceded by a plain fallback in which each
	// non-ASCII character is "_" for readers that know only plain
	// parameters; see formatParams. Empty means no name.
	Filename string
	// ContentType is the media type, for example "application/pdf". Empty
	// means one guessed from Filename's extension with mime.TypeByExtension,
	// or application/octet-stream. multipart/* and message/* types are
	// refused (they cannot be base64-encoded), and so is a charset other
	// than utf-8 or us-ascii.
	ContentType string
	// Content is read once, to EOF, while the message is written, and
	// streamed base64-encoded: it is never held in memory whole. Required.
	Content io.Reader
	// Inline marks an image the HTML body shows as "cid:" + ContentID.
	// Inline attachments need HTML and a ContentID. False means an
	// ordinary attachment.
	Inline bool
	// ContentID is the part's Content-ID without angle brackets. Required
	// when Inline; optional otherwise. Empty means no Content-ID field.
	ContentID string
	// Size is the exact length of Content in octets, if known, used by
	// EstimatedSize. It is a hint: Content is sent in full whatever its
	// length. Zero or negative means unknown.
	Size int64
}

// A Header is an extra header field of a message.
type Header struct {
	// Key is the field name, for example "X-Workflow-Id".
	Key string
	// Value is plain text, encoded per RFC 2047 when not ASCII. Put only
	// ASCII in structured fields such as List-Unsubscribe, whose syntax
	// does not allow encoded-words.
	Value string
}

// WriteTo validates m and then writes it to w as an RFC 5322 message with
// MIME structure, streaming attachments. It returns the number of octets
// written.
//
// The structure is the smallest that holds the content: one text/plain or
// text/html part; multipart/alternative for both; multipart/related around
// the HTML (or the alternative) and the inline images; multipart/mixed
// around that and the other attachments. No multipart is ever empty.
//
// The output is safe to hand to an SMTP DATA writer as it is:
//
//   - every line ends in CRLF, and there is no bare CR, bare LF or NUL,
//     whatever the input: text bodies have their line endings made CRLF
//     and are then quoted-printable-encoded, attachments are base64, and
//     header values with CR, LF or NUL are refused by Validate;
//   - no body line is longer than 76 octets, and no header line longer
//     than 78 unless it holds a single longer word (an RFC 2047
//     encoded-word after "Subject: " makes 84), and never longer than 998;
//   - no line consists of a single "." (a quoted-printable line that would
//     is written "=2E"), so the message does not depend on dot-stuffing;
//   - multipart boundaries start with "=_", which quoted-printable and
//     base64 output cannot contain, so no body can end a part early;
//   - the header holds Date, From, Reply-To, To and Cc (those set),
//     Subject, Message-ID, the custom Headers, MIME-Version and
//     Content-Type (and Content-Transfer-Encoding for a single part), in
//     that order, and nothing else: never a Bcc field.
//
// If Validate fails, WriteTo returns its error and writes nothing. An error
// after writing began (from w or from an attachment's Content) leaves the
// output incomplete: the caller must not let it be delivered.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	out := &bodyWriter{w: w}
	err := m.write(out, false)
	return out.n, err
}

// EstimatedSize returns the size in octets of the message WriteTo would
// write, for the ESMTP SIZE parameter (RFC 1870). ok is false if m is
// invalid or an attachment's Size is unknown.
//
// It writes the message without attachment content to a counter and adds
// the exact base64 length of each attachment's Size. So it is exact when
// every Size is, and never reads any Content. The value excludes
// dot-stuffing, as RFC 1870 specifies, and includes the CRLF that the DATA
// writer adds when the message does not end with one.
func (m *Message) EstimatedSize() (size int64, ok bool) {
	if m.Validate() != nil {
		return 0, false
	}
	var extra int64
	for _, a := range m.Attachments {
		if a.Size <= 0 {
			return 0, false
		}
		extra += base64WireLen(a.Size)
	}
	out := &bodyWriter{w: io.Discard}
	if err := m.write(out, true); err != nil {
		return 0, false
	}
	size = out.n + extra
	if !out.endsCRLF {
		size += 2 // the DATA writer ends the last line
	}
	return size, true
}

// base64WireLen is the length of n octets as base64Writer encodes them:
// 4 characters per 3 octets, with CRLF between lines of 76 characters and
// none after the last line.
func base64WireLen(n int64) int64 {
	if n <= 0 {
		return 0
	}
	enc := (n + 2) / 3 * 4
	lines := (enc + 75) / 76
	return enc + 2*(lines-1)
}

// A part is a node of the MIME tree of a message.
type part struct {
	mediaType string
	fields    []field     // Content-* fields, formatted, in order
	text      string      // the body of a text part
	att       *Attachment // the content of an attachment part
	children  []*part     // the parts of a multipart
	boundary  string      // the boundary of a multipart
}

// tree returns the MIME structure of m, which must be valid.
func (m *Message) tree() *part {
	var body *part
	switch {
	case m.Text != "" && m.HTML != "":
		body = multipart(m.MessageID, "alternative", "", textPart("plain", m.Text), textPart("html", m.HTML))
	case m.HTML != "":
		body = textPart("html", m.HTML)
	case m.Text != "":
		body = textPart("plain", m.Text)
	}
	var inline, attached []*part
	for i := range m.Attachments {
		a := &m.Attachments[i]
		if a.Inline {
			inline = append(inline, attachmentPart(a))
		} else {
			attached = append(attached, attachmentPart(a))
		}
	}
	if len(inline) > 0 { // Validate ensures HTML, so body != nil
		body = multipart(m.MessageID, "related", body.mediaType, append([]*part{body}, inline...)...)
	}
	if len(attached) > 0 {
		if body != nil {
			attached = append([]*part{body}, attached...)
		}
		return multipart(m.MessageID, "mixed", "", attached...)
	}
	if body == nil {
		body = textPart("plain", "")
	}
	return body
}

// textPart returns a UTF-8 quoted-printable text/subtype part.
func textPart(subtype, text string) *part {
	t := "text/" + subtype
	return &part{mediaType: t, text: text, fields: []field{
		{"Content-Type", t + "; charset=utf-8"}, // as formatParams writes it
		{"Content-Transfer-Encoding", "quoted-printable"},
	}}
}

// multipart returns a multipart/subtype part of children; typ is the
// "type" parameter of multipart/related (RFC 2387). messageID seeds the
// boundary (see newBoundary).
func multipart(messageID, subtype, typ string, children ...*part) *part {
	t := "multipart/" + subtype
	boundary := newBoundary(messageID, subtype)
	params := map[string]string{"boundary": boundary}
	if typ != "" {
		params["type"] = typ
	}
	return &part{mediaType: t, children: children, boundary: boundary, fields: []field{
		{"Content-Type", formatParams(t, params)},
	}}
}

// attachmentPart returns a base64 part for a, which must be valid.
func attachmentPart(a *Attachment) *part {
	name := normalizeSpace(a.Filename)
	t, params := attachmentType(a)
	if name != "" {
		params["name"] = name // for readers that ignore Content-Disposition
	}
	disp := "attachment"
	if a.Inline {
		disp = "inline"
	}
	var dparams map[string]string
	if name != "" {
		dparams = map[string]string{"filename": name}
	}
	p := &part{mediaType: t, att: a, fields: []field{
		{"Content-Type", formatParams(t, params)},
		{"Content-Transfer-Encoding", "base64"},
		{"Content-Disposition", formatParams(disp, dparams)},
	}}
	if a.ContentID != "" {
		p.fields = append(p.fields, field{"Content-ID", "<" + a.ContentID + ">"})
	}
	return p
}

// formatParams formats a Content-Type or Content-Disposition value: v and
// its parameters. ASCII values are written as mime.FormatMediaType writes
// them (sorted, quoted where needed). A value with non-ASCII characters,
// such as a file name, is written twice (RFC 2231 §4, as RFC 6266 §4.3
// recommends for file names):
//
//   - as a plain fallback, key="…", with each non-ASCII character replaced
//     by "_", so that a reader that knows only plain parameters still gets
//     a name with the right extension;
//   - as an RFC 2231 extended parameter (key*=, the charset utf-8, two
//     apostrophes, the value percent-encoded), split into continuations
//     (key*0*=, key*1*=, …) when it is long, so that every line stays
//     short and no character is split. Readers
//     that know RFC 2231 (Go's mime, go-message, Thunderbird, Apple Mail,
//     Gmail, current Outlook) use it in preference to the fallback.
//
// An RFC 2047 encoded-word inside a quoted parameter, as go-message
// writes non-ASCII parameters, is not used: RFC 2047 §5 forbids it and
// Go's mime.ParseMediaType shows it raw.
func formatParams(v string, params map[string]string) string {
	plain := make(map[string]string, len(params))
	var ext []string
	for k, val := range params {
		if isASCII(val) {
			plain[k] = val
		} else {
			plain[k] = asciiFallback(val)
			ext = append(ext, k)
		}
	}
	out := mime.FormatMediaType(v, plain)
	slices.Sort(ext)
	for _, k := range ext {
		out += rfc2231(k, params[k])
	}
	return out
}

// asciiFallback returns s with each non-ASCII character replaced by "_".
func asciiFallback(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= utf8.RuneSelf {
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// rfc2231Segment bounds the encoded text of one RFC 2231 segment, so that
// "; filename*12*=" and a segment fit a 78-octet line.
const rfc2231Segment = 56

// rfc2231 returns the parameter key with value v as RFC 2231 extended
// parameters, each after "; ", for example
//
//	filename*=utf-8''%C3%9Cberstunden.pdf
//
// when it fits one segment, else continuations key*0*=, key*1*=, …, split
// between characters, the first one starting with the charset.
func rfc2231(key, v string) string {
	var segs []string
	var cur strings.Builder
	for _, r := range v {
		var enc string
		if r < utf8.RuneSelf && isAttrChar(byte(r)) {
			enc = string(r)
		} else {
			var buf [utf8.UTFMax]byte
			for _, c := range buf[:utf8.EncodeRune(buf[:], r)] {
				enc += fmt.Sprintf("%%%02X", c)
			}
		}
		if cur.Len() > 0 && cur.Len()+len(enc) > rfc2231Segment {
			segs = append(segs, cur.String())
			cur.Reset()
		}
		cur.WriteString(enc)
	}
	segs = append(segs, cur.String())
	if len(segs) == 1 {
		return "; " + key + "*=utf-8''" + segs[0]
	}
	var b strings.Builder
	for i, seg := range segs {
		b.WriteString("; " + key + "*" + strconv.Itoa(i) + "*=")
		if i == 0 {
			b.WriteString("utf-8''")
		}
		b.WriteString(seg)
	}
	return b.String()
}

// isAttrChar reports whether c may stand unencoded in an RFC 2231 value
// (attribute-char: a token character other than "*", "'" and "%").
func isAttrChar(c byte) bool {
	return isLetDig(c) || strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

// attachmentType returns the media type and parameters of a, guessing from
// the filename when a.ContentType is empty.
func attachmentType(a *Attachment) (string, map[string]string) {
	if a.ContentType != "" {
		t, params, _ := mime.ParseMediaType(a.ContentType) // checked by Validate
		return t, params
	}
	if ext := path.Ext(a.Filename); ext != "" {
		if guess := mime.TypeByExtension(ext); guess != "" && mediaTypeProblem(guess) == "" {
			t, params, _ := mime.ParseMediaType(guess)
			return t, params
		}
	}
	return "application/octet-stream", map[string]string{}
}

// newBoundary returns the boundary of a message's multipart/subtype part
// (a message has at most one of each subtype). It starts with "=_", which
// neither quoted-printable nor base64 output can contain, so content can
// never end a part early, whether or not the boundary can be guessed: it
// is derived from the Message-ID when there is one, so that a message
// renders to the same bytes every time (golden files, emailconn's
// Render), and random otherwise.
func newBoundary(messageID, subtype string) string {
	var b [24]byte
	if messageID == "" {
		rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	} else {
		sum := sha256.Sum256([]byte("emailconn boundary\x00" + subtype + "\x00" + messageID))
		copy(b[:], sum[:])
	}
	return "=_" + hex.EncodeToString(b[:])
}

// write writes m, which must be valid, to out. With dry set it writes no
// attachment content.
func (m *Message) write(out *bodyWriter, dry bool) error {
	if len(m.Attachments) == 0 {
		return m.writeSimple(out)
	}
	return m.writeStream(out, dry)
}

// foldWidth is the line length that fold keeps to where it can (RFC 5322
// §2.1.1 "SHOULD be no more than 78 characters").
const foldWidth = 78

// fold formats the field key: value as lines ending in CRLF, breaking the
// value at spaces so that no line is longer than 78 octets unless it holds
// a single word that is longer. Breaking replaces a space with CRLF and that
// space, so unfolding gives back the value exactly. Validate guarantees
// that every word fits a 998-octet line.
//
// go-message folds header fields itself, but when the first word does not
// fit in 76 octets (as with a Subject whose first RFC 2047 encoded-word,
// 75 octets, follows "Subject: ") it falls back to breaking at 998 octets,
// it inserts a space into a word it cannot fold, and it panics on field
// names of 74 octets or more; so fields are folded here and added raw.
func fold(key, value string) string {
	var b strings.Builder
	b.Grow(len(key) + len(value) + 8)
	b.WriteString(key)
	b.WriteString(":")
	n := len(key) + 1
	for i, w := range strings.Split(value, " ") {
		switch {
		case i > 0 && w != "" && n+1+len(w) > foldWidth && n > 1:
			b.WriteString("\r\n ")
			n = 1
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

// A field is a header field, its value formatted but not folded.
type field struct {
	key, value string
}

// headerFields returns the header fields of m without the MIME ones, in
// the order they are written: text RFC 2047 Q-encoded by the standard
// library's mime package (headerValue, subjectValue), the RFC 5322 date,
// addresses by formatAddressList, and folded by fold when written.
func (m *Message) headerFields() []field {
	fs := make([]field, 0, 8+len(m.Headers))
	if !m.Date.IsZero() {
		d := m.Date
		if _, off := d.Zone(); off%60 != 0 {
			d = d.UTC() // RFC 5322 zones are whole minutes
		}
		fs = append(fs, field{"Date", d.Format(dateLayout)})
	}
	for _, l := range m.addressFields() {
		if len(l.addrs) > 0 {
			fs = append(fs, field{l.key, formatAddressList(normalizeAddresses(l.addrs))})
		}
	}
	fs = append(fs, field{"Subject", subjectValue(m.Subject)})
	fs = append(fs, field{"Message-ID", "<" + m.MessageID + ">"})
	for _, c := range m.Headers {
		fs = append(fs, field{c.Key, headerValue(c.Value)})
	}
	return fs
}

// headerValue returns the value of a custom header field: whitespace
// normalised, and RFC 2047 Q-encoded (in encoded-words of at most 75
// octets) when it is not ASCII.
func headerValue(v string) string {
	return mime.QEncoding.Encode("utf-8", normalizeSpace(v))
}

// subjectValue returns the value of the Subject field: as headerValue,
// and an ASCII word too long for a line with "Subject: ", which folding
// cannot break, written as a run of encoded-words of at most 75 octets
// that a reader joins back into the word (RFC 2047 §6.2: white space
// between adjacent encoded-words is not displayed). A custom header may
// be a structured field, where encoded-words are not allowed, so only the
// Subject gets this.
func subjectValue(subject string) string {
	v := headerValue(subject)
	limit := MaxLineLength - len("Subject: ")
	if v != normalizeSpace(subject) || len(v) <= limit {
		return v // encoded already, or no word can be too long
	}
	words := strings.Split(v, " ")
	prevEncoded := false
	for i, w := range words {
		if len(w) <= limit {
			prevEncoded = false
			continue
		}
		words[i] = qWords(w, prevEncoded)
		prevEncoded = true
	}
	return strings.Join(words, " ")
}

// qWords writes the ASCII word w as Q encoded-words of at most 75 octets
// separated by spaces; with space, the first one starts with an encoded
// space, which separates w from the encoded-word before it.
func qWords(w string, space bool) string {
	const prefix, suffix = "=?utf-8?q?", "?="
	const payload = 75 - len(prefix) - len(suffix)
	var b, cur strings.Builder
	flush := func() {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(prefix + cur.String() + suffix)
		cur.Reset()
	}
	if space {
		cur.WriteByte('_')
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		enc := string(c)
		if c <= ' ' || c >= 0x7f || c == '=' || c == '?' || c == '_' {
			enc = fmt.Sprintf("=%02X", c)
		}
		if cur.Len()+len(enc) > payload {
			flush()
		}
		cur.WriteString(enc)
	}
	flush()
	return b.String()
}

// dateLayout is the Date format of RFC 5322 §3.3.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// formatAddressList formats addresses for a header field. A display name
// that is not ASCII is Q-encoded (RFC 2047) when every ASCII character in
// it may stand in an encoded-word within a phrase (§5 rule 3: letters,
// digits, "!*+-/" and space), else B-encoded: net/mail's Q encoding keeps
// characters such as a backslash literal, and a reader then cannot parse
// the address (found by FuzzMessage).
func formatAddressList(addrs []*mail.Address) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		switch {
		case a.Name == "":
			parts[i] = (&mail.Address{Address: a.Address}).String()
		case isASCII(a.Name):
			parts[i] = a.String()
		case qSafe(a.Name):
			parts[i] = a.String() // net/mail Q-encodes it
		default:
			parts[i] = mime.BEncoding.Encode("utf-8", a.Name) + " " + (&mail.Address{Address: a.Address}).String()
		}
	}
	return strings.Join(parts, ", ")
}

// qSafe reports whether every ASCII character of s may appear Q-encoded in
// a phrase.
func qSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!*+-/ ", c) >= 0) {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// An addressField is an address header field of a message.
type addressField struct {
	name, key string // the Message field and the header field
	addrs     []*mail.Address
}

// addressFields returns the address fields of m in the order they are
// written.
func (m *Message) addressFields() []addressField {
	var from []*mail.Address
	if m.From != nil {
		from = []*mail.Address{m.From}
	}
	return []addressField{
		{"From", "From", from},
		{"ReplyTo", "Reply-To", m.ReplyTo},
		{"To", "To", m.To},
		{"Cc", "Cc", m.Cc},
	}
}

// normalizeAddresses returns copies of addrs with normalised names; nil
// entries are dropped (Validate refuses them).
func normalizeAddresses(addrs []*mail.Address) []*mail.Address {
	out := make([]*mail.Address, 0, len(addrs))
	for _, a := range addrs {
		if a != nil {
			out = append(out, &mail.Address{Name: normalizeSpace(a.Name), Address: a.Address})
		}
	}
	return out
}

// normalizeSpace removes leading and trailing spaces and tabs from s and
// makes each inner run of them one space.
func normalizeSpace(s string) string {
	if !strings.ContainsAny(s, "\t") && !strings.Contains(s, "  ") &&
		(s == "" || s[0] != ' ' && s[len(s)-1] != ' ') {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, isWSP), " ")
}

// isWSP reports whether r is a space or a tab (RFC 5234 WSP).
func isWSP(r rune) bool { return r == ' ' || r == '\t' }

// A bodyWriter is the writer at the bottom of a message: it counts octets
// and remembers whether the output ends in CRLF.
type bodyWriter struct {
	w        io.Writer
	n        int64
	endsCRLF bool
	lastCR   bool
}

// put writes p to the underlying writer and counts it.
func (b *bodyWriter) put(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := b.w.Write(p)
	b.n += int64(n)
	if n >= 2 {
		b.endsCRLF = p[n-2] == '\r' && p[n-1] == '\n'
	} else if n == 1 {
		b.endsCRLF = b.lastCR && p[0] == '\n'
	}
	if n > 0 {
		b.lastCR = p[n-1] == '\r'
	}
	return n, err
}
