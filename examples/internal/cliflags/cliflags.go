// Package cliflags holds what the example commands share: repeatable flags
// and the -allow-env / -allow-dir flags of Options.References, with the
// hint that names them when a configuration's reference is refused.
package cliflags

import (
	"errors"
	"flag"
	"strings"

	"github.com/emailconn/emailconn"
)

// List is a repeatable, comma-separated flag.
type List []string

// String returns the values joined by commas.
func (l *List) String() string { return strings.Join(*l, ",") }

// Set adds the comma-separated values of v.
func (l *List) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// References registers -allow-env and -allow-dir on fs and returns the rule
// they fill in.
func References(fs *flag.FlagSet) *emailconn.References {
	refs := &emailconn.References{}
	fs.Var((*List)(&refs.Env), "allow-env", "environment `variable` the configuration's \"env:\" secrets may name (repeatable, comma-separated; PREFIX* for a prefix)")
	fs.Var((*List)(&refs.Dirs), "allow-dir", "`directory` under which the configuration's \"file:\" secrets and caFile may name files (repeatable, comma-separated)")
	return refs
}

// RefsHint names the flags that allow a secret reference or caFile, when
// err refuses one of the configuration's; otherwise it returns "".
func RefsHint(err error) string {
	if refusesReference(err) {
		return "\n(the configuration's \"env:\" and \"file:\" secrets and caFile must be allowed with -allow-env and -allow-dir)"
	}
	return ""
}

// refusesReference reports whether err holds a problem with a field that
// holds a reference or a file name.
func refusesReference(err error) bool {
	var fes []*emailconn.FieldError
	var one *emailconn.FieldError
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range multi.Unwrap() {
			if errors.As(e, &one) {
				fes = append(fes, one)
			}
		}
	} else if errors.As(err, &one) {
		fes = append(fes, one)
	}
	for _, fe := range fes {
		for _, f := range []string{".password", ".caFile", ".clientSecret", ".refreshToken"} {
			if strings.HasSuffix(fe.Field, f) {
				return true
			}
		}
	}
	return false
}
