package emailconn

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A Secret holds a credential — a password, a client secret or a refresh
// token — in one of three forms:
//
//   - a literal value;
//   - "env:NAME", the value of environment variable NAME;
//   - "file:PATH", the contents of file PATH, without a final newline.
//
// A reference is only read where the References rule in force allows it
// (Options.References, or the rule given to Reveal); by default none is.
// It is read each time a new session needs it, so rotated files are picked
// up. A literal cannot start with "env:" or "file:".
//
// A Secret never reveals a literal value when printed: String, every fmt
// verb and flag (Format), log/slog (LogValue) and encoding/json and other
// text encoders (MarshalText) show "[redacted]" instead; references are
// shown as they are, since they hold no secret. Config.Save is the one way
// to write literal values back. Reveal returns the value.
//
// The zero value is no secret ("" everywhere). A Secret is a string: safe
// for concurrent use.
type Secret string

const redacted = "[redacted]"

// Size limits of the files a configuration may name.
const (
	maxSecretFile = 64 << 10
	maxCAFile     = 4 << 20
)

// References is the rule for what an "env:" or "file:" reference in a
// Secret, and a Connection's CAFile, may read. It exists because whoever
// enters a connection chooses its mail server: a reference the engine
// resolves is sent to that server (a password in AUTH), so a tenant who may
// enter connections must not be able to name the engine's own environment
// or files.
//
// The zero value allows no reference at all: secrets must be literals and
// CAFile must be empty. That is the right rule for configuration that comes
// from a user. An engine loading its own configuration file lists the
// variables and directories that file may use (see Options.References).
// A refused reference is reported with the same text whether or not its
// target exists, so the error tells nothing about the machine.
//
// A References value is read, never modified: it is safe for concurrent
// use.
type References struct {
	// Env lists the environment variables an "env:NAME" reference may
	// name. An entry ending in "*" allows every name with that prefix
	// ("SMTP_*"); "*" alone allows every variable. Zero means none.
	Env []string

	// Dirs lists the directories under which a "file:PATH" reference or a
	// CAFile may name a regular file. A relative PATH is taken from the
	// working directory. PATH is resolved, symbolic links included, and
	// must still lie under one of Dirs (resolved the same way): a link out
	// of a listed directory is refused. Zero means none.
	Dirs []string
}

// allowsEnv reports whether the rule allows environment variable name.
func (r *References) allowsEnv(name string) bool {
	for _, e := range r.Env {
		if prefix, ok := strings.CutSuffix(e, "*"); ok && strings.HasPrefix(name, prefix) || e == name {
			return true
		}
	}
	return false
}

// under reports whether path, absolute and clean, lies under one of dirs.
func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if d == path || strings.HasPrefix(path, strings.TrimSuffix(d, string(filepath.Separator))+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// cleanDirs returns Dirs made absolute and clean; resolve also resolves
// their symbolic links (a directory that cannot be resolved is kept as it
// is written).
func (r *References) cleanDirs(resolve bool) []string {
	out := make([]string, 0, len(r.Dirs))
	for _, d := range r.Dirs {
		if d == "" {
			continue
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			continue
		}
		if resolve {
			if real, err := filepath.EvalSymlinks(abs); err == nil {
				abs = real
			}
		}
		out = append(out, abs)
	}
	return out
}

// readFile reads the regular file at path, of at most limit bytes, when the
// rule allows it. what names the value in messages ("file", "CA file"). A
// path outside the rule is refused before the file system is touched, and a
// path that leads out of the rule through a symbolic link gets the same
// text. Devices, pipes and directories are refused without being opened
// for reading, so nothing blocks: FIFOs are opened non-blocking and checked
// after opening as well.
func (r *References) readFile(path string, limit int64, what string) ([]byte, string) {
	refused := fmt.Sprintf("%s %q is not allowed: it is not under a directory that Options.References.Dirs lists", what, path)
	abs, err := filepath.Abs(path)
	if err != nil || !under(abs, r.cleanDirs(false)) && !under(abs, r.cleanDirs(true)) {
		return nil, refused
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Sprintf("%s %q does not exist", what, path)
		}
		return nil, fmt.Sprintf("%s %q cannot be read", what, path)
	}
	if !under(real, r.cleanDirs(true)) {
		return nil, refused
	}
	fi, err := os.Lstat(real)
	if err != nil {
		return nil, fmt.Sprintf("%s %q cannot be read", what, path)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Sprintf("%s %q is not a regular file", what, path)
	}
	f, err := os.OpenFile(real, openReadNonblock, 0)
	if err != nil {
		return nil, fmt.Sprintf("%s %q cannot be read", what, path)
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil || !ofi.Mode().IsRegular() || !os.SameFile(fi, ofi) {
		return nil, fmt.Sprintf("%s %q is not a regular file", what, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Sprintf("%s %q cannot be read", what, path)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Sprintf("%s %q is larger than %d bytes", what, path, limit)
	}
	return data, ""
}

// loadCAFile reads the PEM certificates of a CAFile under the rule; the
// problem is "" on success.
func (r *References) loadCAFile(path string) (*x509.CertPool, string) {
	data, msg := r.readFile(path, maxCAFile, "CA file")
	if msg != "" {
		return nil, msg
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Sprintf("CA file %q holds no PEM certificate", path)
	}
	return pool, ""
}

func (s Secret) ref() (kind, target string) {
	switch str := string(s); {
	case strings.HasPrefix(str, "env:"):
		return "env", str[len("env:"):]
	case strings.HasPrefix(str, "file:"):
		return "file", str[len("file:"):]
	}
	return "", ""
}

// IsReference reports whether s is an "env:" or "file:" reference.
func (s Secret) IsReference() bool {
	kind, _ := s.ref()
	return kind != ""
}

// Reveal returns the secret's value, reading the environment variable or
// file it refers to when refs allows it; a literal is returned as it is.
// The zero References allows no reference. The error is a *FieldError
// (matching ErrInvalid) that names the variable or file, never a value, and
// a refused reference reads the same whether or not its target exists.
// Reveal is safe for concurrent use.
func (s Secret) Reveal(refs References) (string, error) {
	v, msg := s.reveal(&refs)
	if msg != "" {
		return "", &FieldError{Field: "Secret", Problem: msg}
	}
	return v, nil
}

// reveal returns the value, or a problem in lower case.
func (s Secret) reveal(refs *References) (string, string) {
	kind, target := s.ref()
	switch kind {
	case "env":
		if !refs.allowsEnv(target) {
			return "", fmt.Sprintf("%q is not allowed: Options.References.Env does not list %s", string(s), target)
		}
		v, ok := os.LookupEnv(target)
		if !ok {
			return "", fmt.Sprintf("environment variable %s is not set", target)
		}
		if v == "" {
			return "", fmt.Sprintf("environment variable %s is empty", target)
		}
		return v, ""
	case "file":
		data, msg := refs.readFile(target, maxSecretFile, "file")
		if msg != "" {
			return "", msg
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if v == "" {
			return "", fmt.Sprintf("file %q is empty", target)
		}
		return v, ""
	}
	return string(s), ""
}

// checkForm returns a problem with the form of s, or "". It does no I/O.
func (s Secret) checkForm() string {
	if s == redacted {
		return "holds the redaction marker \"[redacted]\", not a secret: the configuration was written without its secrets; write it with Config.Save"
	}
	kind, target := s.ref()
	if kind != "" && target == "" {
		return fmt.Sprintf("%q names no %s", string(s), map[string]string{"env": "variable", "file": "file"}[kind])
	}
	return ""
}

// String returns "" for an empty secret, the reference for an "env:" or
// "file:" reference, and "[redacted]" for a literal.
func (s Secret) String() string {
	switch {
	case s == "":
		return ""
	case s.IsReference():
		return string(s)
	}
	return redacted
}

// Format prints String for every verb and flag, quoted for %q. It is also
// what %#v prints: fmt prefers Format to GoString, so a Secret has no
// GoString.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = f.Write([]byte(strconv.Quote(s.String())))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// LogValue returns String for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText returns String, for encoding/json (which writes it as a JSON
// string, and uses it for a Secret map key too) and every other encoder
// that uses encoding.TextMarshaler: references are kept, literals are
// written as "[redacted]". Config.Save writes literals. It returns no error.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
