package emailconn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A Config is an engine's whole email configuration: its connections, its
// OAuth2 configurations, the engine-wide ("grid") settings, and which
// process uses which connection. It is plain data with the JSON form of
// the configuration file (the member names are given below; a Connection's
// and an OAuth2Config's are their json tags); LoadConfig reads it and Save
// writes it.
//
// The zero value is an empty configuration: valid, and a Registry holding
// it resolves no process. A Config is safe for concurrent use as long as
// nobody modifies it; a Registry keeps its own copy.
type Config struct {
	// Connections ("connections") are the named Email Connections. Zero
	// means none.
	Connections []Connection
	// OAuth2Configs ("oauth2Configurations") are the named OAuth2
	// configurations that OAuth2 connections refer to. Zero means none.
	OAuth2Configs []OAuth2Config
	// Grid ("grid") is the engine-wide mail server and addresses, used by
	// processes without a connection. Its Name must be empty. Nil means
	// there is none: a process without a connection then cannot send.
	Grid *Connection
	// Processes ("processes") assigns a connection, by name, to each
	// process that has one. Processes not listed use Grid. Zero means
	// every process uses Grid.
	Processes map[string]string
}

// gridName is how errors, logs and tools name the grid settings; no
// connection may be called so.
const gridName = "grid"

// maxConfigBytes bounds the size of a configuration file.
const maxConfigBytes = 4 << 20

// LoadConfig reads a configuration in its JSON form, of at most 4 MiB, and
// validates it (see Config.Validate: it reads no secret and no CAFile). The
// error lists the problems, at most 100 and then how many more, each a
// *FieldError whose Field is the path to the value
// ("connections[2].smtpTimeout"); it matches ErrInvalid. Unknown fields
// (with the closest known field suggested), repeated keys and data after
// the object are errors, so that a misspelt or repeated option cannot
// silently change behaviour; syntax errors name the line and column. An
// error reading r is a *FieldError for "configuration" that unwraps to r's
// error. LoadConfig is safe for concurrent use.
func LoadConfig(r io.Reader) (Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return Config{}, &FieldError{Field: "configuration", Problem: "cannot be read: " + err.Error(), err: err}
	}
	if len(data) > maxConfigBytes {
		return Config{}, &FieldError{Field: "configuration", Problem: fmt.Sprintf("is larger than %d bytes", maxConfigBytes)}
	}
	var cfg Config
	var p problems
	cfg.decode(data, &p)
	var v problems
	cfg.validate(&v)
	// A field whose value could not be read is reported once, not again by
	// validation.
	bad := make(map[string]bool, len(p.errs))
	for _, e := range p.errs {
		bad[e.(*FieldError).Field] = true
	}
	for _, e := range v.errs {
		if !bad[e.(*FieldError).Field] {
			p.merge(&problems{errs: []error{e}})
		}
	}
	p.dropped += v.dropped
	p.stopped = p.stopped || v.stopped
	if err := p.err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c *Config) decode(data []byte, p *problems) {
	fields, ok := decodeObject(data, p)
	if !ok {
		return
	}
	for _, f := range fields {
		switch f.key {
		case "connections":
			c.Connections = decodeList(p, f, (*Connection).decode)
		case "oauth2Configurations":
			c.OAuth2Configs = decodeList(p, f, (*OAuth2Config).decode)
		case "grid":
			if isNull(f.raw) {
				continue
			}
			var g Connection
			sub := problems{prefix: "grid."}
			g.decode(f.raw, &sub)
			p.merge(&sub)
			c.Grid = &g
		case "processes":
			decodeStringMap(p, f, &c.Processes, "an object mapping process names to connection names")
		default:
			unknownField(p, f.key, jsonKeys(configJSON{}))
		}
	}
}

// decodeList reads a list of objects with decode, naming each problem by
// its path ("connections[2].smtpTimeout"). It stops once p is full: the
// error is long enough, and the rest would only cost memory.
func decodeList[T any](p *problems, f jsonField, decode func(*T, []byte, *problems)) []T {
	var out []T
	for i, raw := range decodeArray(p, f) {
		if p.full() {
			p.stopped = true
			break
		}
		var v T
		sub := problems{prefix: fmt.Sprintf("%s[%d].", f.key, i)}
		decode(&v, raw, &sub)
		p.merge(&sub)
		out = append(out, v)
	}
	return out
}

func decodeArray(p *problems, f jsonField) []json.RawMessage {
	if isNull(f.raw) {
		return nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(f.raw, &list); err != nil {
		p.add(f.key, "must be a list")
		return nil
	}
	return list
}

// Validate reports every problem with c at once, joined with errors.Join;
// each is a *FieldError whose Field is the path in the JSON form. Besides
// each connection and OAuth2 configuration, it checks that names are unique
// (no connection may be called "grid") and that every reference — a process
// to its connection, a connection to its OAuth2 configuration — resolves.
// It does no I/O: secret references and CAFile are read under
// Options.References by NewRegistry, Replace and Update. It is safe for
// concurrent use as long as nobody modifies c.
func (c *Config) Validate() error {
	var p problems
	c.validate(&p)
	return p.err()
}

func (c *Config) validate(p *problems) {
	oauthIndex := make(map[string]int, len(c.OAuth2Configs))
	for i := range c.OAuth2Configs {
		o := &c.OAuth2Configs[i]
		sub := problems{prefix: fmt.Sprintf("oauth2Configurations[%d].", i)}
		o.validate(&sub, oauth2JSONNames)
		p.merge(&sub)
		if o.Name == "" {
			continue
		}
		if j, dup := oauthIndex[o.Name]; dup {
			sub.add("name", "%q is also the name of oauth2Configurations[%d]", o.Name, j)
			p.errs = append(p.errs, sub.errs[len(sub.errs)-1])
			continue
		}
		oauthIndex[o.Name] = i
	}
	connIndex := make(map[string]int, len(c.Connections))
	for i := range c.Connections {
		conn := &c.Connections[i]
		sub := problems{prefix: fmt.Sprintf("connections[%d].", i)}
		if conn.Name == "" {
			sub.add("name", "is required")
		} else if strings.EqualFold(conn.Name, gridName) {
			sub.add("name", "%q is reserved for the grid settings: choose another name", conn.Name)
		}
		c.validateConnection(conn, &sub, oauthIndex)
		if j, dup := connIndex[conn.Name]; dup && conn.Name != "" {
			sub.add("name", "%q is also the name of connections[%d]", conn.Name, j)
		} else if conn.Name != "" {
			connIndex[conn.Name] = i
		}
		p.merge(&sub)
	}
	if c.Grid != nil {
		sub := problems{prefix: "grid."}
		if c.Grid.Name != "" {
			sub.add("name", "the grid settings have no name: remove it")
		}
		c.validateConnection(c.Grid, &sub, oauthIndex)
		p.merge(&sub)
	}
	for _, proc := range sortedKeys(c.Processes) {
		field := "processes[" + jsonQuote(proc) + "]"
		name := c.Processes[proc]
		switch msg := checkName(proc); {
		case proc == "":
			p.add("processes", "has an empty process name")
		case msg != "":
			p.add(field, "process name %s", msg)
		case name == "":
			p.add(field, "names no connection (remove the entry to use the grid settings)")
		default:
			if _, ok := connIndex[name]; !ok {
				p.add(field, "connection %q does not exist%s", name, suggest(name, slices.Collect(maps.Keys(connIndex))))
			}
		}
	}
}

func (c *Config) validateConnection(conn *Connection, p *problems, oauthIndex map[string]int) {
	conn.validate(p, jsonNames)
	if conn.OAuth2Config != "" && conn.authType() == authOAuth2 {
		if _, ok := oauthIndex[conn.OAuth2Config]; !ok {
			p.add("oauth2Configuration", "OAuth2 configuration %q does not exist%s",
				conn.OAuth2Config, suggest(conn.OAuth2Config, slices.Collect(maps.Keys(oauthIndex))))
		}
	}
}

// suggest returns ` (did you mean "x"?)` for the known name closest to name
// when it is plausibly a typo, or lists the known names when there are few.
func suggest(name string, known []string) string {
	sort.Strings(known)
	switch best := closest(name, known); {
	case best != "":
		return fmt.Sprintf(" (did you mean %q?)", best)
	case len(known) == 0:
		return " (there are none)"
	case len(known) <= 5:
		return fmt.Sprintf(" (known: %s)", strings.Join(quoteAll(known), ", "))
	}
	return ""
}

// closest returns the known name closest to name when it is plausibly a
// typo of it (a small edit distance, case ignored), or "".
func closest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if len(name)-len(k) >= bestDist || len(k)-len(name) >= bestDist {
			continue // the distance is at least the difference in length
		}
		d := editDistance(strings.ToLower(name), strings.ToLower(k))
		if d < bestDist && d*3 <= max(len(name), len(k)) {
			best, bestDist = k, d
		}
	}
	return best
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// configJSON is the JSON form of a Config.
type configJSON struct {
	Connections   []jsonObject      `json:"connections"`
	OAuth2Configs []jsonObject      `json:"oauth2Configurations,omitempty"`
	Grid          *jsonObject       `json:"grid,omitempty"`
	Processes     map[string]string `json:"processes,omitempty"`
}

func (c *Config) toJSON(reveal bool) configJSON {
	out := configJSON{Connections: []jsonObject{}, Processes: c.Processes}
	for i := range c.Connections {
		out.Connections = append(out.Connections, c.Connections[i].toJSON(reveal))
	}
	for i := range c.OAuth2Configs {
		out.OAuth2Configs = append(out.OAuth2Configs, c.OAuth2Configs[i].toJSON(reveal))
	}
	if c.Grid != nil {
		g := c.Grid.toJSON(reveal)
		out.Grid = &g
	}
	return out
}

// MarshalJSON writes the JSON form with literal secrets written as
// "[redacted]", for display and logs; "connections" is always written,
// the other members only when set. Save writes a configuration that can
// be loaded again. It returns no error.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.toJSON(false)) }

// UnmarshalJSON reads the JSON form without validating it; LoadConfig reads
// and validates. Its problems are those of LoadConfig's reading (unknown or
// repeated fields, wrong types), every one at once; on error c is left
// unchanged.
func (c *Config) UnmarshalJSON(data []byte) error {
	return unmarshalStrict(c, data, (*Config).decode)
}

// Save writes c in its JSON form, indented, so that LoadConfig reads it
// back unchanged. It is the one way to persist a configuration: unlike
// json.Marshal, it writes literal secrets as they are. References
// ("env:NAME", "file:PATH") are written as references, never as the values
// they refer to. Keep the output as confidential as the secrets in it.
// An error writing to w is a *FieldError for "configuration" (matching
// ErrInvalid) that unwraps to w's error; nothing is written when c cannot
// be encoded. It is safe for concurrent use as long as nobody modifies c.
func (c *Config) Save(w io.Writer) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c.toJSON(true)); err != nil {
		return &FieldError{Field: "configuration", Problem: "cannot be encoded: " + err.Error(), err: err}
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return &FieldError{Field: "configuration", Problem: "cannot be written: " + err.Error(), err: err}
	}
	return nil
}

// clone returns a deep copy of c.
func (c *Config) clone() Config {
	out := Config{
		Connections:   slices.Clone(c.Connections),
		OAuth2Configs: slices.Clone(c.OAuth2Configs),
		Processes:     maps.Clone(c.Processes),
	}
	for i := range out.Connections {
		out.Connections[i].To = slices.Clone(out.Connections[i].To)
	}
	for i := range out.OAuth2Configs {
		o := &out.OAuth2Configs[i]
		o.Scopes = slices.Clone(o.Scopes)
		o.EndpointParams = maps.Clone(o.EndpointParams)
	}
	if c.Grid != nil {
		g := *c.Grid
		g.To = slices.Clone(g.To)
		out.Grid = &g
	}
	return out
}

// unmarshalStrict decodes data with decode into a fresh value and stores it
// in dst only when there was no problem.
func unmarshalStrict[T any](dst *T, data []byte, decode func(*T, []byte, *problems)) error {
	var p problems
	var out T
	decode(&out, data, &p)
	if err := p.err(); err != nil {
		return err
	}
	*dst = out
	return nil
}

// jsonField is one member of a JSON object, in document order.
type jsonField struct {
	key string
	raw json.RawMessage
}

// decodeObject splits a JSON object into its members, in order, reporting
// invalid JSON (data after the object included, with its line and column),
// a value that is not an object, and a key that appears twice (readers
// disagree on which one wins, so "enableTLS":true,"enableTLS":false must
// not load either way).
func decodeObject(data []byte, p *problems) ([]jsonField, bool) {
	if err := json.Unmarshal(data, new(json.RawMessage)); err != nil {
		// Unmarshal checks the whole document first, with offsets from its
		// start.
		p.add("", "is not valid JSON: %s", jsonProblem(data, err))
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		p.add("", "is not valid JSON: %s", jsonProblem(data, err))
		return nil, false
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		p.add("", "must be a JSON object")
		return nil, false
	}
	var fields []jsonField
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			p.add("", "is not valid JSON: %s", jsonProblem(data, err))
			return nil, false
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			p.add(key, "is not valid JSON: %s", jsonProblem(data, err))
			return nil, false
		}
		if seen[key] {
			p.add(key, "appears more than once: keep one")
			continue
		}
		seen[key] = true
		fields = append(fields, jsonField{key: key, raw: raw})
	}
	return fields, true
}

// jsonProblem describes a decoding error, with the line and column of a
// syntax error.
func jsonProblem(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if se.Offset >= int64(len(data)) {
			return "it ends before the value is complete"
		}
		return fmt.Sprintf("%v (at %s)", se, position(data, se.Offset-1)) // Offset counts the bad byte
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "it ends before the value is complete"
	}
	return err.Error()
}

// position returns "line L, column C" of a byte offset into data; columns
// count bytes from 1.
func position(data []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// unknownField reports a member no field has, suggesting the known field
// closest to it.
func unknownField(p *problems, key string, known []string) {
	if p.full() {
		p.dropped++
		return
	}
	if c := closest(key, known); c != "" {
		p.add(key, "unknown field (did you mean %q?)", c)
		return
	}
	p.add(key, "unknown field")
}

// jsonKeys returns the member names of a JSON form struct, from its tags.
func jsonKeys(v any) []string {
	t := reflect.TypeOf(v)
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

func decodeString(p *problems, f jsonField, dst *string) {
	if isNull(f.raw) {
		return
	}
	if err := json.Unmarshal(f.raw, dst); err != nil {
		p.add(f.key, "must be a string")
	}
}

func decodeBool(p *problems, f jsonField, dst *bool) {
	if isNull(f.raw) {
		return
	}
	if err := json.Unmarshal(f.raw, dst); err != nil {
		p.add(f.key, "must be true or false")
	}
}

// decodeStringMap reads an object of string values, such as processes or
// endpointParams, refusing a repeated key; what describes the object for
// the problem of a value that is not one.
func decodeStringMap(p *problems, f jsonField, dst *map[string]string, what string) {
	if isNull(f.raw) {
		return
	}
	if len(f.raw) == 0 || f.raw[0] != '{' {
		p.add(f.key, "must be %s", what)
		return
	}
	var sub problems
	fields, _ := decodeObject(f.raw, &sub)
	for _, e := range sub.errs {
		fe := e.(*FieldError)
		field := f.key
		if fe.Field != "configuration" {
			field += "[" + jsonQuote(fe.Field) + "]"
		}
		p.add(field, "%s", fe.Problem)
	}
	m := make(map[string]string, len(fields))
	for _, mf := range fields {
		var v string
		if err := json.Unmarshal(mf.raw, &v); err != nil {
			p.add(f.key, "must be %s", what)
			return
		}
		m[mf.key] = v
	}
	if len(sub.errs) == 0 {
		*dst = m
	}
}

func decodeStrings(p *problems, f jsonField, dst *[]string) {
	if isNull(f.raw) {
		return
	}
	if err := json.Unmarshal(f.raw, dst); err != nil {
		var one string
		if json.Unmarshal(f.raw, &one) == nil {
			*dst = []string{one}
			return
		}
		p.add(f.key, "must be a list of strings")
	}
}

// decodeInt reads a whole number that is not negative, such as a limit;
// null leaves dst as it is.
func decodeInt(p *problems, f jsonField, dst *int) {
	if isNull(f.raw) {
		return
	}
	if len(f.raw) > 0 && f.raw[0] == '"' {
		p.add(f.key, "must be a number, not a string")
		return
	}
	var n json.Number
	dec := json.NewDecoder(strings.NewReader(string(f.raw)))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		p.add(f.key, "must be a number")
		return
	}
	v, err := strconv.ParseInt(string(n), 10, 32)
	switch {
	case err != nil && strings.ContainsAny(string(n), ".eE"):
		p.add(f.key, "must be a whole number")
	case err != nil:
		p.add(f.key, "must be at most %d", math.MaxInt32)
	case v < 0:
		p.add(f.key, "must not be negative")
	default:
		*dst = int(v)
	}
}

// decodeSeconds reads a timeout: a whole, non-negative number of seconds,
// at most one day; absent, null or 0 mean no timeout.
func decodeSeconds(p *problems, f jsonField, dst *time.Duration) {
	if isNull(f.raw) {
		return
	}
	if len(f.raw) > 0 && f.raw[0] == '"' {
		p.add(f.key, "must be a number of seconds, not a string")
		return
	}
	var n json.Number
	dec := json.NewDecoder(strings.NewReader(string(f.raw)))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		p.add(f.key, "must be a number of seconds")
		return
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	switch {
	case err != nil && strings.ContainsAny(string(n), ".eE"):
		if fv, ferr := strconv.ParseFloat(string(n), 64); ferr == nil && fv < 0 {
			p.add(f.key, "must not be negative")
		} else {
			p.add(f.key, "must be a whole number of seconds")
		}
	case err != nil, v > int64(maxTimeout/time.Second):
		p.add(f.key, "must be at most %d seconds (one day)", int(maxTimeout/time.Second))
	case v < 0:
		p.add(f.key, "must not be negative")
	default:
		*dst = time.Duration(v) * time.Second
	}
}
