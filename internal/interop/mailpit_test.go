package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// mailpit is a client of one Mailpit instance's HTTP API (/api/v1).
type mailpit struct {
	name string
	base string
	hc   *http.Client
}

func newMailpit(name, base string) *mailpit {
	return &mailpit{name: name, base: base, hc: &http.Client{Timeout: 60 * time.Second}}
}

// address is Mailpit's form of a parsed address.
type address struct {
	Name    string
	Address string
}

// summary is one entry of GET /api/v1/messages.
type summary struct {
	ID          string
	MessageID   string
	From        *address
	To          []address
	Subject     string
	Username    string
	Size        int64
	Attachments int
}

// attachment is an attachment or inline part of a message.
type attachment struct {
	PartID      string
	FileName    string
	ContentType string
	ContentID   string
	Size        int64
	Checksums   struct{ MD5, SHA1, SHA256 string }
}

// message is GET /api/v1/message/{ID}: the message as Mailpit parsed it.
type message struct {
	ID          string
	MessageID   string
	From        *address
	To          []address
	Cc          []address
	Bcc         []address
	ReplyTo     []address
	ReturnPath  string
	Subject     string
	Date        time.Time
	Username    string
	Text        string
	HTML        string
	Size        int64
	Inline      []attachment
	Attachments []attachment
}

// do runs one API request and returns the body of a 200 response.
func (m *mailpit) do(t *testing.T, method, path string, body any) []byte {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("mailpit %s: %s %s: encoding the request: %v", m.name, method, path, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, m.base+path, r)
	if err != nil {
		t.Fatalf("mailpit %s: %s %s: %v", m.name, method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		t.Fatalf("mailpit %s: %s %s: %v", m.name, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("mailpit %s: %s %s: reading the response: %v", m.name, method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit %s: %s %s: %s: %.300s", m.name, method, path, resp.Status, b)
	}
	return b
}

func (m *mailpit) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	b := m.do(t, http.MethodGet, path, nil)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("mailpit %s: GET %s: decoding %.200q: %v", m.name, path, b, err)
	}
}

// deleteAll deletes every message (DELETE /api/v1/messages with no IDs).
func (m *mailpit) deleteAll(t *testing.T) {
	t.Helper()
	m.do(t, http.MethodDelete, "/api/v1/messages", nil)
	if n := m.total(t); n != 0 {
		t.Fatalf("mailpit %s: %d messages left after deleting all", m.name, n)
	}
}

// reset deletes every message now and registers no cleanup: the next test
// using the instance resets it again. Tests using one instance do not run
// in parallel.
func (m *mailpit) reset(t *testing.T) *mailpit {
	t.Helper()
	m.deleteAll(t)
	return m
}

// total returns the number of stored messages.
func (m *mailpit) total(t *testing.T) int {
	t.Helper()
	var res struct {
		Total int `json:"total"`
	}
	m.getJSON(t, "/api/v1/messages?limit=1", &res)
	return res.Total
}

// list returns every stored message, newest first.
func (m *mailpit) list(t *testing.T) []summary {
	t.Helper()
	var all []summary
	for {
		var res struct {
			Total    int       `json:"total"`
			Messages []summary `json:"messages"`
		}
		m.getJSON(t, fmt.Sprintf("/api/v1/messages?start=%d&limit=250", len(all)), &res)
		all = append(all, res.Messages...)
		if len(res.Messages) == 0 || len(all) >= res.Total {
			return all
		}
	}
}

// message returns the message with database ID id, as Mailpit parsed it.
func (m *mailpit) message(t *testing.T, id string) *message {
	t.Helper()
	var msg message
	m.getJSON(t, "/api/v1/message/"+url.PathEscape(id), &msg)
	return &msg
}

// raw returns the message as Mailpit stored it (with its Received header).
func (m *mailpit) raw(t *testing.T, id string) []byte {
	t.Helper()
	return m.do(t, http.MethodGet, "/api/v1/message/"+url.PathEscape(id)+"/raw", nil)
}

// part returns the decoded content of one MIME part.
func (m *mailpit) part(t *testing.T, id, partID string) []byte {
	t.Helper()
	return m.do(t, http.MethodGet, "/api/v1/message/"+url.PathEscape(id)+"/part/"+url.PathEscape(partID), nil)
}

// trigger is a Mailpit chaos trigger: the reply code, and the percentage
// of commands that get it.
type trigger struct {
	ErrorCode   int
	Probability int
}

// chaos is the body of PUT /api/v1/chaos; a trigger left out is disabled.
type chaos struct {
	Sender         *trigger `json:",omitempty"`
	Recipient      *trigger `json:",omitempty"`
	Authentication *trigger `json:",omitempty"`
}

// setChaos replaces the chaos triggers and disables them again when the
// test ends.
func (m *mailpit) setChaos(t *testing.T, c chaos) {
	t.Helper()
	m.do(t, http.MethodPut, "/api/v1/chaos", c)
	t.Cleanup(func() {
		// t.Context is done in cleanups: use a fresh request.
		req, _ := http.NewRequest(http.MethodPut, m.base+"/api/v1/chaos", bytes.NewReader([]byte("{}")))
		resp, err := m.hc.Do(req)
		if err != nil {
			t.Errorf("mailpit %s: resetting chaos triggers: %v", m.name, err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("mailpit %s: resetting chaos triggers: %s", m.name, resp.Status)
		}
	})
}

// findByMessageID returns the stored messages whose Message-ID is id.
func findByMessageID(list []summary, id string) []summary {
	var out []summary
	for _, s := range list {
		if s.MessageID == id {
			out = append(out, s)
		}
	}
	return out
}
