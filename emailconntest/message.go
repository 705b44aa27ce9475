package emailconntest

import (
	"bytes"
	"io"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
)

// A Message is a message the server accepted: its envelope, and its
// content decoded with go-message — header fields with RFC 2047 words
// decoded, bodies with their transfer encoding (quoted-printable, base64)
// undone — so a test reads "approve?wu=42", not "approve?wu=3D42".
//
// Decoding is lenient: when the content is not valid MIME (SendRaw can send
// anything), the fields that could be decoded are set and Raw holds the
// whole message.
type Message struct {
	// From is the envelope sender (MAIL FROM), without angle brackets.
	From string
	// To are the envelope recipients the server accepted (RCPT TO), in
	// order. Bcc recipients are here and in no header field.
	To []string

	// Header holds the header fields, keyed in canonical form
	// ("Message-Id", "X-Workunit"), their values decoded to UTF-8 and
	// unfolded, in the order they appear. Header.Get and
	// Header.AddressList work as for any net/mail header.
	Header mail.Header
	// Subject is the decoded Subject field.
	Subject string
	// Text is the first text/plain part that is not an attachment, decoded,
	// with line ends as "\n". A message that is nothing but text ends with
	// a line end, which SMTP adds when the text has none: compare with
	// strings.TrimSuffix or strings.Contains. Zero means there is none.
	Text string
	// HTML is the first text/html part that is not an attachment, decoded,
	// with line ends as "\n". Zero means there is none.
	HTML string
	// Attachments are the other parts — attachments and inline images — in
	// the order they appear.
	Attachments []Attachment

	// Raw is the message as it arrived: CRLF line ends, dot-unstuffed,
	// without the terminating ".".
	Raw []byte
}

// An Attachment is a part of a Message that is neither its text nor its
// HTML body.
type Attachment struct {
	// Filename is the file name the part suggests, decoded; "" when it
	// names none.
	Filename string
	// ContentType is the media type in lower case, such as
	// "application/pdf", without parameters.
	ContentType string
	// ContentID is the Content-ID without angle brackets, by which an HTML
	// body shows an inline image ("cid:" + ContentID); "" when there is
	// none.
	ContentID string
	// Inline reports a part with Content-Disposition inline, such as an
	// image shown by the HTML body.
	Inline bool
	// Content is the part's content, its transfer encoding undone.
	Content []byte
}

// decode decodes a received message with go-message.
func decode(from string, to []string, raw []byte) Message {
	m := Message{From: from, To: to, Raw: raw, Header: mail.Header{}}
	r, _ := gomail.CreateReader(bytes.NewReader(raw))
	if r == nil {
		return m // not even a header
	}
	defer r.Close()
	for f := r.Header.Fields(); f.Next(); {
		v, err := f.Text()
		if err != nil {
			v = f.Value()
		}
		k := textproto.CanonicalMIMEHeaderKey(f.Key())
		m.Header[k] = append(m.Header[k], v)
	}
	m.Subject = m.Header.Get("Subject")
	for {
		p, err := r.NextPart()
		if err != nil && !message.IsUnknownCharset(err) {
			break // io.EOF, or content that is not valid MIME
		}
		body, _ := io.ReadAll(p.Body)
		var h message.Header
		switch ph := p.Header.(type) {
		case *gomail.InlineHeader:
			h = ph.Header
		case *gomail.AttachmentHeader:
			h = ph.Header
		}
		mediaType := mediaTypeOf(h)
		disp, _, _ := h.ContentDisposition()
		filename, _ := (&gomail.AttachmentHeader{Header: h}).Filename()
		isBody := disp != "attachment" && filename == ""
		switch {
		case isBody && mediaType == "text/plain" && m.Text == "":
			m.Text = lf(body)
		case isBody && mediaType == "text/html" && m.HTML == "":
			m.HTML = lf(body)
		default:
			m.Attachments = append(m.Attachments, Attachment{
				Filename: filename, ContentType: mediaType,
				ContentID: strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>"),
				Inline:    disp == "inline", Content: body,
			})
		}
	}
	return m
}

// mediaTypeOf returns the media type of a part in lower case, without
// parameters; text/plain when the field is missing or empty (RFC 2045
// §5.2), the part before ";" when it cannot be parsed.
func mediaTypeOf(h message.Header) string {
	t, _, err := h.ContentType()
	if err != nil {
		t, _, _ = strings.Cut(h.Get("Content-Type"), ";")
		t = strings.ToLower(strings.TrimSpace(t))
	}
	if t == "" {
		return "text/plain"
	}
	return t
}

// lf turns CRLF line ends into LF.
func lf(b []byte) string { return strings.ReplaceAll(string(b), "\r\n", "\n") }

// clone returns a deep copy of m.
func (m Message) clone() Message {
	m.To = slices.Clone(m.To)
	h := make(mail.Header, len(m.Header))
	for k, v := range m.Header {
		h[k] = slices.Clone(v)
	}
	m.Header = h
	m.Attachments = slices.Clone(m.Attachments)
	for i := range m.Attachments {
		m.Attachments[i].Content = slices.Clone(m.Attachments[i].Content)
	}
	m.Raw = slices.Clone(m.Raw)
	return m
}
