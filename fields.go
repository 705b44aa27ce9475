package emailconn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// The field table. Connection and OAuth2Config are each written out once:
// their struct fields, in order, with the JSON name in the json tag. A
// fieldTable, read from the struct when the package is initialised, gives
// every place that lists the fields — the names problems use (see
// FieldError.Field), the JSON form written and read, String and LogValue —
// so that adding a field is one line. Reflection runs only there: loading,
// saving, validating and printing a configuration. Resolve and Send never
// read the table.

// A fieldTable describes the fields of the configuration type T.
type fieldTable[T any] struct {
	typeName  string         // "emailconn.Connection", for String
	fields    []field        // fields[i] is the struct's field i; their order is the JSON form's
	byJSON    map[string]int // JSON name → index into fields
	jsonKeys  []string       // the JSON names, in order: the known fields of a did-you-mean
	jsonNames fieldNames     // Go name → JSON name: how problems in a Config name fields
}

// A field is one field of a configuration type.
type field struct {
	goName    string    // "ConnectTimeout": how problems in a value built in Go name it
	jsonName  string    // "smtpConnectionTimeout": its member in the JSON form; "" when it has none
	omitEmpty bool      // the JSON form leaves an empty value out
	kind      fieldKind // how the value is written and read
}

// fieldKind is how a field's value is written and read.
type fieldKind uint8

const (
	kindString    fieldKind = iota // a string type: Name, TLSMode, AuthType, Provider…
	kindSecret                     // a Secret: redacted unless Config.Save writes it
	kindBool                       // a bool
	kindSeconds                    // a time.Duration, in whole seconds in the JSON form
	kindStrings                    // a []string; a single JSON string reads as a list of one
	kindStringMap                  // a map[string]string
	kindInt                        // an int: a count or a limit
	kindCode                       // a pointer or interface set in code, never in the JSON form
)

var (
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[time.Duration]()
)

// newFieldTable reads the table of T from its struct fields and json tags.
// It panics on a field of a kind the table cannot handle: that is a
// mistake in this package, found by the first test that runs.
func newFieldTable[T any](typeName string) *fieldTable[T] {
	rt := reflect.TypeFor[T]()
	t := &fieldTable[T]{typeName: typeName, byJSON: make(map[string]int), jsonNames: make(fieldNames)}
	for i := range rt.NumField() {
		sf := rt.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		f := field{goName: sf.Name, kind: kindOf(sf.Type)}
		if name != "-" {
			f.jsonName, f.omitEmpty = name, opts == "omitempty"
			t.byJSON[name] = i
			t.jsonKeys = append(t.jsonKeys, name)
			t.jsonNames[sf.Name] = name
		}
		if (f.kind == kindCode) != (f.jsonName == "") {
			panic("emailconn: field table: " + typeName + "." + sf.Name + ": a field set in code has json:\"-\", and only it")
		}
		t.fields = append(t.fields, f)
	}
	return t
}

func kindOf(t reflect.Type) fieldKind {
	switch {
	case t == secretType:
		return kindSecret
	case t == durationType:
		return kindSeconds
	case t.Kind() == reflect.String:
		return kindString
	case t.Kind() == reflect.Bool:
		return kindBool
	case t.Kind() == reflect.Int:
		return kindInt
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return kindStrings
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		return kindStringMap
	case t.Kind() == reflect.Pointer, t.Kind() == reflect.Interface:
		return kindCode
	}
	panic("emailconn: field table: no kind for " + t.String())
}

// fieldNames says how problems name the fields of a configuration type:
// nil means by their Go names, for a value built in Go; a table's jsonNames
// by their JSON names, for a Config (see FieldError.Field).
type fieldNames map[string]string

// of returns how problems name the field whose Go name is goName.
func (n fieldNames) of(goName string) string {
	if name, ok := n[goName]; ok {
		return name
	}
	return goName
}

// jsonForm returns the JSON form of v: its members in declaration order,
// with the empty values of omitempty fields left out, timeouts in whole
// seconds (rounded up, so that a short timeout never becomes none), and
// literal secrets written as "[redacted]" unless reveal is set.
func (t *fieldTable[T]) jsonForm(v *T, reveal bool) jsonObject {
	rv := reflect.ValueOf(v).Elem()
	obj := make(jsonObject, 0, len(t.fields))
	for i := range t.fields {
		f := &t.fields[i]
		if f.jsonName == "" {
			continue
		}
		fv := rv.Field(i)
		var val any
		switch f.kind {
		case kindString:
			val = fv.String()
		case kindSecret:
			val = Secret(fv.String()).String()
			if reveal {
				val = fv.String()
			}
		case kindBool:
			val = fv.Bool()
		case kindSeconds:
			val = int64((time.Duration(fv.Int()) + time.Second - 1) / time.Second)
		case kindInt:
			val = fv.Int()
		case kindStrings, kindStringMap:
			val = fv.Interface()
		}
		if f.omitEmpty && isEmptyJSON(val) {
			continue
		}
		obj = append(obj, jsonMember{key: f.jsonName, value: val})
	}
	return obj
}

// isEmptyJSON reports what encoding/json's omitempty leaves out.
func isEmptyJSON(v any) bool {
	switch v := v.(type) {
	case string:
		return v == ""
	case bool:
		return !v
	case int64:
		return v == 0
	}
	return reflect.ValueOf(v).Len() == 0 // a slice or a map
}

// decode reads the JSON form into v, reporting every problem to p: an
// unknown member (with the closest known one suggested), a repeated one,
// and a value of the wrong type, each named by its JSON name.
func (t *fieldTable[T]) decode(v *T, data []byte, p *problems) {
	members, ok := decodeObject(data, p)
	if !ok {
		return
	}
	rv := reflect.ValueOf(v).Elem()
	for _, m := range members {
		i, ok := t.byJSON[m.key]
		if !ok {
			unknownField(p, m.key, t.jsonKeys)
			continue
		}
		fv := rv.Field(i)
		switch t.fields[i].kind {
		case kindString, kindSecret:
			var s string
			decodeString(p, m, &s)
			fv.SetString(s)
		case kindBool:
			var b bool
			decodeBool(p, m, &b)
			fv.SetBool(b)
		case kindSeconds:
			var d time.Duration
			decodeSeconds(p, m, &d)
			fv.SetInt(int64(d))
		case kindInt:
			var n int
			decodeInt(p, m, &n)
			fv.SetInt(int64(n))
		case kindStrings:
			var list []string
			decodeStrings(p, m, &list)
			fv.Set(reflect.ValueOf(list))
		case kindStringMap:
			var sm map[string]string
			decodeStringMap(p, m, &sm, "an object of string values")
			fv.Set(reflect.ValueOf(sm))
		}
	}
}

// describe describes v in Go syntax without secrets: every field that is
// set, and those the JSON form always writes, by Go name.
func (t *fieldTable[T]) describe(v *T) string {
	var b strings.Builder
	b.WriteString(t.typeName)
	b.WriteByte('{')
	sep := ""
	t.each(v, func(f *field, fv reflect.Value) {
		b.WriteString(sep)
		sep = ", "
		b.WriteString(f.goName)
		b.WriteString(": ")
		b.WriteString(f.text(fv))
	})
	b.WriteByte('}')
	return b.String()
}

// logValue describes v for log/slog without secrets: the fields describe
// shows, by JSON name (fields set in code are left out).
func (t *fieldTable[T]) logValue(v *T) slog.Value {
	attrs := make([]slog.Attr, 0, len(t.fields))
	t.each(v, func(f *field, fv reflect.Value) {
		switch f.kind {
		case kindCode:
		case kindBool:
			attrs = append(attrs, slog.Bool(f.jsonName, fv.Bool()))
		case kindStrings:
			attrs = append(attrs, slog.Any(f.jsonName, fv.Interface()))
		case kindString:
			attrs = append(attrs, slog.String(f.jsonName, fv.String()))
		default:
			attrs = append(attrs, slog.String(f.jsonName, f.text(fv)))
		}
	})
	return slog.GroupValue(attrs...)
}

// each calls fn for the fields of v that describe shows: those that are set,
// and those the JSON form always writes.
func (t *fieldTable[T]) each(v *T, fn func(*field, reflect.Value)) {
	rv := reflect.ValueOf(v).Elem()
	for i := range t.fields {
		f := &t.fields[i]
		fv := rv.Field(i)
		empty := fv.IsZero() || (f.kind == kindStrings || f.kind == kindStringMap) && fv.Len() == 0
		if empty && (f.jsonName == "" || f.omitEmpty) {
			continue
		}
		fn(f, fv)
	}
}

// text is the Go-syntax text of a field's value, without secrets: a
// literal secret is "[redacted]", a map says how many entries it has (its
// values, token request parameters, may be credentials), and a value set
// in code says only that it is set.
func (f *field) text(fv reflect.Value) string {
	switch f.kind {
	case kindString:
		return strconv.Quote(fv.String())
	case kindSecret:
		return Secret(fv.String()).String()
	case kindBool:
		return strconv.FormatBool(fv.Bool())
	case kindSeconds:
		return time.Duration(fv.Int()).String()
	case kindInt:
		return strconv.FormatInt(fv.Int(), 10)
	case kindStrings:
		return fmt.Sprintf("%q", fv.Interface())
	case kindStringMap:
		return fmt.Sprintf("(%d set)", fv.Len())
	}
	return "(set in code)"
}

// secrets calls fn with the Go name and value of each Secret field of v
// that is set.
func (t *fieldTable[T]) secrets(v *T, fn func(goName string, s Secret)) {
	rv := reflect.ValueOf(v).Elem()
	for i := range t.fields {
		if f := &t.fields[i]; f.kind == kindSecret {
			if s := Secret(rv.Field(i).String()); s != "" {
				fn(f.goName, s)
			}
		}
	}
}

// checkSecretForms reports the Secret fields of v whose form is wrong (see
// Secret.checkForm). It does no I/O.
func (t *fieldTable[T]) checkSecretForms(v *T, p *problems, n fieldNames) {
	t.secrets(v, func(goName string, s Secret) {
		if msg := s.checkForm(); msg != "" {
			p.add(n.of(goName), "%s", msg)
		}
	})
}

// checkSecretRefs reports the Secret fields of v that refs does not allow
// or that do not resolve. Only a valid form is checked (see
// checkSecretForms).
func (t *fieldTable[T]) checkSecretRefs(v *T, p *problems, n fieldNames, refs *References) {
	t.secrets(v, func(goName string, s Secret) {
		if s.checkForm() == "" {
			if _, msg := s.reveal(refs); msg != "" {
				p.add(n.of(goName), "%s", msg)
			}
		}
	})
}

// A jsonObject is a JSON object whose members keep their order, as
// encoding/json writes a struct's fields.
type jsonObject []jsonMember

type jsonMember struct {
	key   string
	value any
}

// MarshalJSON writes the members in order. It escapes no HTML characters:
// encoding/json does that to a Marshaler's output unless the encoder says
// not to (Config.Save), so the output is the same as a struct's.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		for j, v := range []any{m.key, m.value} {
			if err := enc.Encode(v); err != nil {
				return nil, err
			}
			buf.Truncate(buf.Len() - 1) // Encode ends with a newline
			if j == 0 {
				buf.WriteByte(':')
			}
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
