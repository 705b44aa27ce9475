package interop

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

// TestRichMessage sends a message with text, HTML, a 10 MiB attachment, an
// inline image, and non-ASCII subject, display names, file name and header
// over STARTTLS, and compares what Mailpit stored with what was sent, byte
// for byte after decoding: once as Mailpit's parser (enmime) reads it,
// through the message and part API, and once as the standard library reads
// the raw message.
func TestRichMessage(t *testing.T) {
	s := setup(t)
	mp := mailpitOf(instSTARTTLS).reset(t)
	snd := newSender(t, s.conn(instSTARTTLS, "starttls"), nil)

	big := make([]byte, 10<<20)
	fillRandom(big, 42)
	logo := pngImage(t)
	longLine := strings.Repeat("Lange Zeile ohne Umbruch äöü ß 山田 ", 50) // ~1.9 kB, one line
	text := "Hallo Jürgen,\n\nbitte genehmigen Sie die Überstunden (12,5 h) für März.\n" +
		"山田太郎さんの承認が必要です。\n\n" +
		".\n" + // a line that is only a dot: SMTP's end of data if not escaped
		"..two dots\n" +
		"trailing spaces   \n" +
		"a\ttab\n" +
		longLine + "\n" +
		"=?utf-8?q?not_an_encoded_word?= and = signs == \n" +
		"Ende\n"
	html := "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n" +
		"<p>Hallo <b>Jürgen</b>, 山田太郎さん</p>\n" +
		"<p><img src=\"cid:logo@emailconn.test\" alt=\"Logo\"></p>\n" +
		"<p>" + longLine + "</p>\n.\n</body></html>\n"
	date := time.Date(2026, 3, 14, 15, 9, 26, 0, time.FixedZone("CET", 3600))
	msg := &emailconn.Message{
		From:    "Prozess-Engine Müller & Söhne <engine@example.com>",
		To:      []string{"山田太郎 <yamada@example.com>", `"Groß, Jürgen" <juergen@example.com>`},
		Cc:      []string{"François Dupont <francois@example.com>"},
		Bcc:     []string{"Geheimer Prüfer <audit@example.com>"},
		ReplyTo: []string{"Überstunden-Team <team@example.com>"},
		Subject: "Genehmigung erforderlich: Überstunden für Jürgen",
		Text:    text,
		HTML:    html,
		Attachments: []emailconn.Attachment{
			{Filename: "Überstunden-Nachweis März 2026.pdf", ContentType: "application/pdf", Content: bytes.NewReader(big)},
			{Filename: "logo.png", ContentType: "image/png", Content: bytes.NewReader(logo), Inline: true, ContentID: "logo@emailconn.test"},
		},
		Headers: map[string]string{"X-Process": "Überstunden Jürgen", "X-Workunit": "42"},
		Date:    date,
	}
	rc, err := snd.Send(t.Context(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := mp.stored(t, rc)

	// As Mailpit parsed it.
	if got.Subject != msg.Subject {
		t.Errorf("Mailpit: Subject = %q, want %q", got.Subject, msg.Subject)
	}
	wantFrom := address{"Prozess-Engine Müller & Söhne", "engine@example.com"}
	if got.From == nil || *got.From != wantFrom {
		t.Errorf("Mailpit: From = %+v, want %+v", got.From, wantFrom)
	}
	checkAddrs(t, "Mailpit: To", got.To, address{"山田太郎", "yamada@example.com"}, address{"Groß, Jürgen", "juergen@example.com"})
	checkAddrs(t, "Mailpit: Cc", got.Cc, address{"François Dupont", "francois@example.com"})
	checkAddrs(t, "Mailpit: Reply-To", got.ReplyTo, address{"Überstunden-Team", "team@example.com"})
	// Mailpit adds the envelope recipients missing from the header as
	// Bcc: the Bcc recipient got the message without being named in it.
	checkAddrs(t, "Mailpit: Bcc", got.Bcc, address{"", "audit@example.com"})
	if got.Text != crlf(text) {
		t.Errorf("Mailpit: Text differs from the text sent:\n%s", diffAt(got.Text, crlf(text)))
	}
	if got.HTML != crlf(html) {
		t.Errorf("Mailpit: HTML differs from the HTML sent:\n%s", diffAt(got.HTML, crlf(html)))
	}
	if len(got.Attachments) != 1 {
		t.Fatalf("Mailpit: %d attachments %+v, want 1", len(got.Attachments), got.Attachments)
	}
	att := got.Attachments[0]
	if att.FileName != msg.Attachments[0].Filename || att.ContentType != "application/pdf" || att.Size != int64(len(big)) {
		t.Errorf("Mailpit: attachment %q (%s, %d bytes), want %q (application/pdf, %d bytes)",
			att.FileName, att.ContentType, att.Size, msg.Attachments[0].Filename, len(big))
	}
	if want := sha256Hex(big); att.Checksums.SHA256 != want {
		t.Errorf("Mailpit: attachment SHA-256 = %s, want %s", att.Checksums.SHA256, want)
	}
	if b := mp.part(t, got.ID, att.PartID); !bytes.Equal(b, big) {
		t.Errorf("Mailpit: attachment part %s: %d bytes (SHA-256 %s), want the %d bytes sent (%s)",
			att.PartID, len(b), sha256Hex(b), len(big), sha256Hex(big))
	}
	if len(got.Inline) != 1 {
		t.Fatalf("Mailpit: %d inline parts %+v, want 1", len(got.Inline), got.Inline)
	}
	in := got.Inline[0]
	if in.ContentID != "logo@emailconn.test" || in.FileName != "logo.png" || in.ContentType != "image/png" {
		t.Errorf("Mailpit: inline part Content-ID %q, file %q, type %q; want logo@emailconn.test, logo.png, image/png", in.ContentID, in.FileName, in.ContentType)
	}
	if b := mp.part(t, got.ID, in.PartID); !bytes.Equal(b, logo) {
		t.Errorf("Mailpit: inline image part %s = %d bytes, want the %d bytes sent", in.PartID, len(b), len(logo))
	}
	if !got.Date.Equal(date) {
		t.Errorf("Mailpit: Date = %v, want %v", got.Date, date)
	}

	// As the standard library reads the raw message.
	raw := mp.raw(t, got.ID)
	checkWireForm(t, raw)
	if i := bytes.Index(raw, []byte("Geheimer")); i >= 0 {
		t.Errorf("raw: the Bcc recipient's name is in the message: %.80q", raw[max(0, i-40):])
	}
	if n := bytes.Count(raw, []byte("audit@example.com")); n != 1 {
		t.Errorf("raw: the Bcc address appears %d times, want once (in the Bcc field Mailpit adds)", n)
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("raw: net/mail cannot read the message: %v", err)
	}
	dec := new(mime.WordDecoder)
	for key, want := range map[string]string{"Subject": msg.Subject, "X-Process": "Überstunden Jürgen", "X-Workunit": "42"} {
		if got, err := dec.DecodeHeader(m.Header.Get(key)); err != nil || got != want {
			t.Errorf("raw: %s decodes to %q (%v), want %q", key, got, err, want)
		}
	}
	if got := m.Header.Get("Message-ID"); got != "<"+rc.MessageID+">" {
		t.Errorf("raw: Message-ID = %q, want <%s>", got, rc.MessageID)
	}
	to, err := m.Header.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Name != "山田太郎" || to[1].Name != "Groß, Jürgen" {
		t.Errorf("raw: To = %v (%v), want 山田太郎 and \"Groß, Jürgen\"", to, err)
	}
	if from, err := m.Header.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != wantFrom.Name {
		t.Errorf("raw: From = %v (%v), want %q", from, err, wantFrom.Name)
	}
	parts := leafParts(t, textproto.MIMEHeader(m.Header), m.Body)
	byType := map[string][]leaf{}
	for _, p := range parts {
		byType[p.mediaType] = append(byType[p.mediaType], p)
	}
	if len(parts) != 4 || len(byType["text/plain"]) != 1 || len(byType["text/html"]) != 1 || len(byType["application/pdf"]) != 1 || len(byType["image/png"]) != 1 {
		t.Fatalf("raw: leaf parts %v, want text/plain, text/html, application/pdf, image/png", parts)
	}
	if p := byType["text/plain"][0]; string(p.body) != crlf(text) || !strings.EqualFold(p.params["charset"], "utf-8") {
		t.Errorf("raw: text/plain (charset %q) differs from the text sent:\n%s", p.params["charset"], diffAt(string(p.body), crlf(text)))
	}
	if p := byType["text/html"][0]; string(p.body) != crlf(html) {
		t.Errorf("raw: text/html differs from the HTML sent:\n%s", diffAt(string(p.body), crlf(html)))
	}
	if p := byType["application/pdf"][0]; !bytes.Equal(p.body, big) || p.filename != msg.Attachments[0].Filename || p.disposition != "attachment" {
		t.Errorf("raw: attachment %q (%s): %d bytes, SHA-256 %s; want %q (attachment): %d bytes, %s",
			p.filename, p.disposition, len(p.body), sha256Hex(p.body), msg.Attachments[0].Filename, len(big), sha256Hex(big))
	}
	if p := byType["image/png"][0]; !bytes.Equal(p.body, logo) || p.contentID != "<logo@emailconn.test>" || p.disposition != "inline" {
		t.Errorf("raw: inline image: Content-ID %q, disposition %q, %d bytes; want <logo@emailconn.test>, inline, the %d bytes sent",
			p.contentID, p.disposition, len(p.body), len(logo))
	}
}

// checkAddrs compares a parsed address list.
func checkAddrs(t *testing.T, what string, got []address, want ...address) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

// checkWireForm checks what RFC 5322 and SMTP require of the raw message:
// CRLF line ends only, no line over 998 octets, and — since no address
// needs SMTPUTF8 and bodies are quoted-printable or base64 — 7-bit ASCII
// throughout, so that it needs neither SMTPUTF8 nor 8BITMIME.
func checkWireForm(t *testing.T, raw []byte) {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Errorf("raw: the message does not end with CRLF")
	}
	for i, line := range bytes.SplitAfter(raw, []byte("\r\n")) {
		body := bytes.TrimSuffix(line, []byte("\r\n"))
		if j := bytes.IndexAny(body, "\r\n"); j >= 0 {
			t.Errorf("raw: line %d has a bare CR or LF at byte %d: %.80q", i+1, j, body)
			return
		}
		if len(body) > 998 {
			t.Errorf("raw: line %d is %d octets long, more than 998: %.80q…", i+1, len(body), body)
			return
		}
		for j, c := range body {
			if c >= 0x80 || c == 0 {
				t.Errorf("raw: line %d has the non-ASCII byte %#x at %d: %.80q", i+1, c, j, body)
				return
			}
		}
	}
}

// leaf is a decoded non-multipart part.
type leaf struct {
	mediaType   string
	params      map[string]string
	disposition string
	filename    string
	contentID   string
	body        []byte
}

func (l leaf) String() string { return fmt.Sprintf("%s(%d bytes)", l.mediaType, len(l.body)) }

// leafParts walks a MIME entity with the standard library only and returns
// its leaf parts, their transfer encoding undone.
func leafParts(t *testing.T, h textproto.MIMEHeader, body io.Reader) []leaf {
	t.Helper()
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("raw: Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		var out []leaf
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatalf("raw: %s: %v", mt, err)
			}
			out = append(out, leafParts(t, p.Header, p)...)
		}
	}
	var r io.Reader = body
	switch cte := strings.ToLower(h.Get("Content-Transfer-Encoding")); cte {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "", "7bit", "8bit", "binary":
	default:
		t.Fatalf("raw: %s part has Content-Transfer-Encoding %q", mt, cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("raw: decoding the %s part: %v", mt, err)
	}
	l := leaf{mediaType: mt, params: params, body: b, contentID: h.Get("Content-ID")}
	if cd := h.Get("Content-Disposition"); cd != "" {
		disp, dparams, err := mime.ParseMediaType(cd)
		if err != nil {
			t.Errorf("raw: Content-Disposition %q: %v", cd, err)
		}
		l.disposition, l.filename = disp, dparams["filename"]
		// emailconn writes a non-ASCII file name as RFC 2231's filename*=
		// (which mime.ParseMediaType decodes) after a plain ASCII
		// fallback; a name in the RFC 2047 form other programs write is
		// decoded too.
		if name, err := new(mime.WordDecoder).DecodeHeader(l.filename); err == nil {
			l.filename = name
		}
	}
	return []leaf{l}
}

// diffAt describes where two strings first differ.
func diffAt(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-40)
	return fmt.Sprintf("  lengths %d and %d; first difference at byte %d\n  got:  …%q…\n  want: …%q…",
		len(got), len(want), i, got[lo:min(len(got), i+40)], want[lo:min(len(want), i+40)])
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// fillRandom fills b with deterministic pseudo-random bytes.
func fillRandom(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

// pngImage returns a small PNG image.
func pngImage(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 48, 48))
	for y := range 48 {
		for x := range 48 {
			img.Set(x, y, color.RGBA{uint8(x * 5), uint8(y * 5), 160, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
