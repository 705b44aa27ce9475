package compose

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
)

// testDate is the Date of test messages.
var testDate = time.Date(2026, 11, 27, 9, 30, 0, 0, time.FixedZone("CET", 3600))

// validMessage returns a small valid message that tests modify.
func validMessage() *Message {
	return &Message{
		From:      &mail.Address{Name: "Workflow Engine", Address: "engine@example.com"},
		To:        []*mail.Address{{Name: "Ops", Address: "ops@example.com"}},
		Subject:   "Workunit failed",
		Text:      "The workunit failed.\n",
		Date:      testDate,
		MessageID: "20261127.abc@engine.example.com",
	}
}

// checkWire returns the first problem in a composed message: a NUL, a bare
// CR or LF, a line longer than 998 octets or a line that is just ".".
func checkWire(b []byte) error {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return fmt.Errorf("NUL at offset %d", i)
	}
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return fmt.Errorf("bare CR at offset %d: %q", i, around(b, i))
		}
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return fmt.Errorf("bare LF at offset %d: %q", i, around(b, i))
		}
	}
	off := 0
	for _, line := range bytes.Split(b, []byte("\r\n")) {
		if len(line) > MaxLineLength {
			return fmt.Errorf("line of %d octets at offset %d", len(line), off)
		}
		if string(line) == "." {
			return fmt.Errorf(`line "." at offset %d`, off)
		}
		off += len(line) + 2
	}
	return nil
}

func around(b []byte, i int) []byte {
	return b[max(0, i-20):min(len(b), i+20)]
}

// normWS is the documented normalisation of header text, written
// independently of normalizeSpace.
func normWS(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
}

// An entity is a parsed MIME entity with its decoded body.
type entity struct {
	header    message.Header
	mediaType string
	params    map[string]string
	body      []byte
	parts     []*entity
}

// parseEntity parses a message with go-message, decoding transfer
// encodings.
func parseEntity(t testing.TB, b []byte) *entity {
	t.Helper()
	e, err := message.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("message.Read: %v\n%s", err, b)
	}
	return walk(t, e)
}

func walk(t testing.TB, e *message.Entity) *entity {
	t.Helper()
	mt, params, err := e.Header.ContentType()
	if err != nil {
		t.Fatalf("Content-Type %q: %v", e.Header.Get("Content-Type"), err)
	}
	n := &entity{header: e.Header, mediaType: mt, params: params}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("NextPart: %v", err)
			}
			n.parts = append(n.parts, walk(t, p))
		}
		return n
	}
	n.body, err = io.ReadAll(e.Body)
	if err != nil {
		t.Fatalf("reading a %s body: %v", mt, err)
	}
	return n
}

// shape returns the MIME tree as text, for example
// "multipart/alternative[text/plain text/html]".
func (e *entity) shape() string {
	if e.parts == nil {
		return e.mediaType
	}
	var s []string
	for _, p := range e.parts {
		s = append(s, p.shape())
	}
	return e.mediaType + "[" + strings.Join(s, " ") + "]"
}

// find returns the first leaf of media type mt, or nil.
func (e *entity) find(mt string) *entity {
	if e.parts == nil {
		if e.mediaType == mt {
			return e
		}
		return nil
	}
	for _, p := range e.parts {
		if f := p.find(mt); f != nil {
			return f
		}
	}
	return nil
}

// compose writes m and fails the test on an error or a wire problem.
func compose(t testing.TB, m *Message) []byte {
	t.Helper()
	var b bytes.Buffer
	n, err := m.WriteTo(&b)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(b.Len()) {
		t.Errorf("WriteTo = %d, wrote %d octets", n, b.Len())
	}
	if err := checkWire(b.Bytes()); err != nil {
		t.Fatalf("WriteTo output: %v\n%s", err, b.Bytes())
	}
	return b.Bytes()
}

// headerKeys returns the top-level header field names in order.
func headerKeys(b []byte) []string {
	head, _, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	var keys []string
	for _, line := range strings.Split(string(head), "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, _, _ := strings.Cut(line, ":")
		keys = append(keys, k)
	}
	return keys
}
