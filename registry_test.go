package emailconn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emailconn/emailconn"
)

const designConfig = `{
  "connections": [
    {"name": "workunit-alerts", "mailServer": "smtp.example.com:587",
     "enableTLS": true, "smtpConnectionTimeout": 10, "smtpTimeout": 60,
     "authType": "basic", "userName": "alerts@example.com",
     "password": "env:ALERTS_SMTP_PASSWORD", "from": "alerts@example.com",
     "emailActionsBaseURL": "https://approvals.example.com"},
    {"name": "m365", "mailServer": "smtp.office365.com", "enableTLS": true,
     "authType": "oauth2", "userName": "robot@contoso.com",
     "oauth2Configuration": "contoso", "caFile": ""}
  ],
  "oauth2Configurations": [
    {"name": "contoso", "grantType": "client_credentials",
     "tokenURL": "https://login.microsoftonline.com/TENANT/oauth2/v2.0/token",
     "clientID": "app-id", "clientSecret": "FILE_REF",
     "scopes": ["https://outlook.office365.com/.default"]}
  ],
  "grid": {"mailServer": "relay.internal:25", "from": "engine@example.com",
           "to": ["ops@example.com"]},
  "processes": {"PayrollApproval": "workunit-alerts", "Onboarding": "m365"}
}`

// loadDesignConfig loads the configuration of DESIGN.md with its secret
// references pointing at a test environment variable and file.
func loadDesignConfig(t testing.TB) emailconn.Config {
	t.Helper()
	secretFile := filepath.Join(t.TempDir(), "contoso")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ALERTS_SMTP_PASSWORD", "hunter2")
	in := strings.Replace(designConfig, "FILE_REF", "file:"+filepath.ToSlash(secretFile), 1)
	cfg, err := emailconn.LoadConfig(strings.NewReader(in))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return cfg
}

func TestLoadDesignConfig(t *testing.T) {
	cfg := loadDesignConfig(t)
	if len(cfg.Connections) != 2 || len(cfg.OAuth2Configs) != 1 || cfg.Grid == nil || len(cfg.Processes) != 2 {
		t.Fatalf("LoadConfig = %+v", cfg)
	}
	if got := cfg.Connections[0].Password; got != "env:ALERTS_SMTP_PASSWORD" {
		t.Errorf("password = %q, want the reference kept", string(got))
	}

	// Save writes references as references and reads back unchanged.
	var buf bytes.Buffer
	if err := cfg.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "hunter2") || strings.Contains(buf.String(), "s3cret") {
		t.Errorf("Save resolved a reference:\n%s", buf.String())
	}
	back, err := emailconn.LoadConfig(&buf)
	if err != nil {
		t.Fatalf("LoadConfig(Save()) = %v", err)
	}
	if fmt.Sprint(back) != fmt.Sprint(cfg) {
		t.Errorf("round trip:\n got %v\nwant %v", back, cfg)
	}
}

func TestSaveWritesLiteralsButMarshalDoesNot(t *testing.T) {
	t.Parallel()
	cfg := emailconn.Config{Connections: []emailconn.Connection{{Name: "a", MailServer: "m.example", EnableTLS: true, Username: "u", Password: "literal-pw"}}}
	var saved bytes.Buffer
	if err := cfg.Save(&saved); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(saved.String(), `"password": "literal-pw"`) {
		t.Errorf("Save did not write the literal:\n%s", saved.String())
	}
	back, err := emailconn.LoadConfig(&saved)
	if err != nil || back.Connections[0].Password != "literal-pw" {
		t.Errorf("LoadConfig(Save()) = %v, %v", back, err)
	}
	marshalled, _ := cfg.MarshalJSON()
	if strings.Contains(string(marshalled), "literal-pw") {
		t.Errorf("MarshalJSON wrote the literal: %s", marshalled)
	}
	// A configuration written without secrets cannot be loaded as if it had them.
	if _, err := emailconn.LoadConfig(bytes.NewReader(marshalled)); err == nil || !strings.Contains(err.Error(), "redaction marker") {
		t.Errorf("LoadConfig(MarshalJSON()) = %v, want the redaction marker refused", err)
	}
}

// TestTenMistakes loads a configuration with ten mistakes and expects one
// error listing all ten, each with its path.
func TestTenMistakes(t *testing.T) {
	t.Parallel()
	in := `{
  "connections": [
    {"name": "a", "mailServer": "smtp.example.com:99999", "enableTLS": true},
    {"name": "b", "mailServer": "smtp.example.com", "smtpTimeout": -5, "enableTSL": true},
    {"name": "c", "mailServer": "smtp.example.com", "enableTLS": true, "smtpConnectionTimeout": 2.5,
     "authType": "oauth2", "userName": "x@example.com", "oauth2Configuration": "contso"},
    {"name": "a", "mailServer": "smtp.example.com", "emailActionsBaseURL": "https://approvals.example.com/path?q=1"},
    {"name": "e", "mailServer": "relay.internal", "userName": "u", "password": "p"}
  ],
  "oauth2Configurations": [
    {"name": "contoso", "grantType": "password", "tokenURL": "http://login.example.com/token", "clientID": "id"}
  ],
  "grid": {"mailServer": "relay.internal", "from": "not-an-address"},
  "processes": {"Payroll": "workunit"}
}`
	_, err := emailconn.LoadConfig(strings.NewReader(in))
	if err == nil {
		t.Fatal("LoadConfig = nil error, want ten problems")
	}
	want := []string{
		`connections[0].mailServer: "smtp.example.com:99999": port "99999" must be a number from 1 to 65535`,
		`connections[1].smtpTimeout: must not be negative`,
		`connections[1].enableTSL: unknown field`,
		`connections[2].smtpConnectionTimeout: must be a whole number of seconds`,
		`connections[2].oauth2Configuration: OAuth2 configuration "contso" does not exist (did you mean "contoso"?)`,
		`connections[3].name: "a" is also the name of connections[0]`,
		`connections[4].tlsMode: TLS is off but credentials are configured`,
		`oauth2Configurations[0].grantType: "password" is not supported`,
		`oauth2Configurations[0].tokenURL: "http://login.example.com/token" must use https`,
		`grid.from: "not-an-address" is not an email address`,
		`processes["Payroll"]: connection "workunit" does not exist`,
		`connections[3].emailActionsBaseURL: `,
	}
	var multi interface{ Unwrap() []error }
	if !errors.As(err, &multi) {
		t.Fatalf("LoadConfig error %T is not a joined error", err)
	}
	var lines []string
	for _, e := range multi.Unwrap() {
		var fe *emailconn.FieldError
		if !errors.As(e, &fe) {
			t.Errorf("problem %v is not a *FieldError", e)
		}
		lines = append(lines, e.Error())
	}
	for _, w := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, w) }) {
			t.Errorf("LoadConfig error lacks %q; got:\n%s", w, strings.Join(lines, "\n"))
		}
	}
	if len(lines) != len(want) {
		t.Errorf("LoadConfig reported %d problems, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	if !errors.Is(err, emailconn.ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false")
	}
}

func TestLoadConfigRejectsUnknownTopLevel(t *testing.T) {
	t.Parallel()
	_, err := emailconn.LoadConfig(strings.NewReader(`{"connection": []}`))
	if err == nil || !strings.Contains(err.Error(), "connection: unknown field") {
		t.Errorf("LoadConfig = %v, want unknown field", err)
	}
	_, err = emailconn.LoadConfig(strings.NewReader(`{"connections": [`))
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("LoadConfig(truncated) = %v, want a JSON error", err)
	}
}

func testRegistry(t testing.TB) *emailconn.Registry {
	t.Helper()
	r, err := emailconn.NewRegistry(emailconn.Config{
		Connections: []emailconn.Connection{
			{Name: "alerts", MailServer: "smtp.example.com", EnableTLS: true, From: "alerts@example.com", ActionsBaseURL: "https://approvals.example.com"},
			{Name: "bare", MailServer: "relay2.example.com"},
			{Name: "team", MailServer: "smtp.example.com", EnableTLS: true, From: "team@example.com", To: []string{"team-leads@example.com"}},
		},
		Grid:      &emailconn.Connection{MailServer: "relay.internal", From: "engine@example.com", To: []string{"ops@example.com"}, ActionsBaseURL: "https://engine.example.com"},
		Processes: map[string]string{"Payroll": "alerts", "Legacy": "bare", "Hiring": "team"},
	}, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolvePrecedence(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	tests := []struct {
		process  string
		node     []string
		want     string
		wantVia  emailconn.Layer
		wantFrom emailconn.Layer
		wantTo   emailconn.Layer
	}{
		{"Payroll", nil, `process "Payroll": connection "alerts" (smtp.example.com); from alerts@example.com [connection]; to (none); action links https://approvals.example.com [connection]`, emailconn.LayerConnection, emailconn.LayerConnection, emailconn.LayerNone},
		{"Payroll", []string{"approver@example.com"}, `process "Payroll": connection "alerts" (smtp.example.com); from alerts@example.com [connection]; to approver@example.com [node]; action links https://approvals.example.com [connection]`, emailconn.LayerConnection, emailconn.LayerConnection, emailconn.LayerNode},
		// A connection without addresses does not inherit the grid's.
		{"Legacy", nil, `process "Legacy": connection "bare" (relay2.example.com); from (none); to (none)`, emailconn.LayerConnection, emailconn.LayerNone, emailconn.LayerNone},
		{"Hiring", nil, `process "Hiring": connection "team" (smtp.example.com); from team@example.com [connection]; to team-leads@example.com [connection]`, emailconn.LayerConnection, emailconn.LayerConnection, emailconn.LayerConnection},
		{"Unassigned", nil, `process "Unassigned": grid settings (relay.internal); from engine@example.com [grid]; to ops@example.com [grid]; action links https://engine.example.com [grid]`, emailconn.LayerGrid, emailconn.LayerGrid, emailconn.LayerGrid},
		{"Unassigned", []string{"a@example.com", "b@example.com"}, `process "Unassigned": grid settings (relay.internal); from engine@example.com [grid]; to a@example.com, b@example.com [node]; action links https://engine.example.com [grid]`, emailconn.LayerGrid, emailconn.LayerGrid, emailconn.LayerNode},
	}
	for _, tt := range tests {
		rt, err := r.Resolve(tt.process, tt.node...)
		if err != nil {
			t.Fatalf("Resolve(%q) = %v", tt.process, err)
		}
		if got := rt.String(); got != tt.want {
			t.Errorf("Resolve(%q, %q) = %s\nwant %s", tt.process, tt.node, got, tt.want)
		}
		// Issue 12: the layers are the route's (Connection "" = grid) and
		// NodeRecipients; From's layer is the route's.
		via := emailconn.RouteVia(rt)
		if (via == emailconn.LayerGrid) != (rt.Connection == "") {
			t.Errorf("Resolve(%q): Connection %q, layer %v", tt.process, rt.Connection, via)
		}
		from, to := emailconn.LayerNone, emailconn.LayerNone
		if rt.From != "" {
			from = via
		}
		switch {
		case rt.NodeRecipients:
			to = emailconn.LayerNode
		case len(rt.To) > 0:
			to = via
		}
		if via != tt.wantVia || from != tt.wantFrom || to != tt.wantTo {
			t.Errorf("Resolve(%q) layers = %v/%v/%v, want %v/%v/%v", tt.process, via, from, to, tt.wantVia, tt.wantFrom, tt.wantTo)
		}
	}
}

func TestResolveWithoutGrid(t *testing.T) {
	t.Parallel()
	r, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{{Name: "a", MailServer: "m.example"}}, Processes: map[string]string{"P": "a"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve("P"); err != nil {
		t.Errorf("Resolve(P) = %v", err)
	}
	if _, err := r.Resolve("Q"); !errors.Is(err, emailconn.ErrNotFound) || !strings.Contains(err.Error(), `process "Q"`) {
		t.Errorf("Resolve(Q) = %v, want ErrNotFound naming the process", err)
	}
	var zero emailconn.Registry
	if _, err := zero.Resolve("P"); !errors.Is(err, emailconn.ErrNotFound) {
		t.Errorf("zero Registry Resolve = %v, want ErrNotFound", err)
	}
}

func TestRegistryUpdateValidates(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	err := r.Update(func(c *emailconn.Config) error {
		c.Processes["Payroll"] = "missing"
		return nil
	})
	if !errors.Is(err, emailconn.ErrInvalid) {
		t.Fatalf("Update to a missing connection = %v, want ErrInvalid", err)
	}
	if rt, _ := r.Resolve("Payroll"); rt.Connection != "alerts" {
		t.Errorf("after a failed Update, Payroll uses %q, want the old %q", rt.Connection, "alerts")
	}
	if err := r.Update(func(c *emailconn.Config) error {
		c.Connections = append(c.Connections, emailconn.Connection{Name: "new", MailServer: "new.example"})
		c.Processes["Payroll"] = "new"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rt, _ := r.Resolve("Payroll"); rt.Connection != "new" {
		t.Errorf("after Update, Payroll uses %q, want %q", rt.Connection, "new")
	}
	// The caller's copy cannot change the registry.
	cfg := r.Config()
	cfg.Processes["Payroll"] = "alerts"
	cfg.Connections[0].MailServer = "evil.example"
	if rt, _ := r.Resolve("Payroll"); rt.Connection != "new" {
		t.Errorf("modifying Config() changed the registry")
	}
	if rt, _ := r.Resolve("Hiring"); rt.MailServer != "smtp.example.com" {
		t.Errorf("modifying Config() changed the registry: %v", rt)
	}
	sentinel := errors.New("stop")
	if err := r.Update(func(*emailconn.Config) error { return sentinel }); err != sentinel {
		t.Errorf("Update returned %v, want the function's error", err)
	}
}

// TestReplaceIsAtomic resolves from many goroutines while the configuration
// flips between two versions: every route must be wholly one version.
func TestReplaceIsAtomic(t *testing.T) {
	t.Parallel()
	mk := func(v string) emailconn.Config {
		return emailconn.Config{
			Connections: []emailconn.Connection{{Name: "c", MailServer: v + ".example", From: v + "@example.com", To: []string{v + "-ops@example.com"}}},
			Grid:        &emailconn.Connection{MailServer: "grid-" + v + ".example", From: "grid-" + v + "@example.com"},
			Processes:   map[string]string{"P": "c"},
		}
	}
	r, err := emailconn.NewRegistry(mk("v1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	held, _ := r.Resolve("P")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, proc := range []string{"P", "Q"} {
					rt, err := r.Resolve(proc)
					if err != nil {
						t.Error(err)
						return
					}
					v := strings.TrimPrefix(strings.SplitN(rt.MailServer, ".", 2)[0], "grid-")
					if !strings.Contains(rt.From, v+"@") || (proc == "P" && rt.To[0] != v+"-ops@example.com") {
						t.Errorf("inconsistent route %v", rt)
						return
					}
				}
			}
		})
	}
	for i := range 200 {
		if err := r.Replace(mk(fmt.Sprintf("v%d", i%2+1))); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if held.MailServer != "v1.example" || held.From != "v1@example.com" {
		t.Errorf("a route held across Replace changed: %v", held)
	}
}

func TestResolveDoesNotAllocate(t *testing.T) {
	r := testRegistry(t)
	node := []string{"n@example.com"}
	allocs := testing.AllocsPerRun(1000, func() {
		rt, _ := r.Resolve("Payroll")
		rt2, _ := r.Resolve("Unassigned", node...)
		if rt.Connection == "" || emailconn.RouteVia(rt2) != emailconn.LayerGrid {
			panic("bad route")
		}
	})
	if allocs != 0 {
		t.Errorf("Resolve allocates %v times per call, want 0", allocs)
	}
}

// benchRegistry builds a registry of 10,000 processes over 100 connections.
func benchRegistry(b *testing.B) (*emailconn.Registry, []string) {
	cfg := emailconn.Config{Processes: make(map[string]string, 10000), Grid: &emailconn.Connection{MailServer: "relay.internal", From: "engine@example.com"}}
	for i := range 100 {
		cfg.Connections = append(cfg.Connections, emailconn.Connection{Name: fmt.Sprintf("conn-%d", i), MailServer: fmt.Sprintf("smtp%d.example.com", i), EnableTLS: true, From: fmt.Sprintf("n%d@example.com", i)})
	}
	procs := make([]string, 0, 10000)
	for i := range 10000 {
		p := fmt.Sprintf("Process%05d", i)
		procs = append(procs, p)
		if i%10 != 0 { // every tenth process uses the grid
			cfg.Processes[p] = fmt.Sprintf("conn-%d", i%100)
		}
	}
	r, err := emailconn.NewRegistry(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return r, procs
}

func BenchmarkResolve(b *testing.B) {
	r, procs := benchRegistry(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := r.Resolve(procs[i%len(procs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkResolveParallel(b *testing.B) {
	r, procs := benchRegistry(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := r.Resolve(procs[i%len(procs)]); err != nil {
				b.Fatal(err)
			}
			i += 7
		}
	})
}

// TestIssue10_04_ErrorsMatchSentinels checks that lookups of unknown names
// match ErrNotFound, that the missing grid settings read with one prefix,
// and that reading and writing errors of a configuration start with
// "emailconn: ", match ErrInvalid and keep their cause.
func TestIssue10_04_ErrorsMatchSentinels(t *testing.T) {
	t.Parallel()
	r, err := emailconn.NewRegistry(emailconn.Config{
		Connections:   []emailconn.Connection{{Name: "alerts", MailServer: "m.example"}},
		OAuth2Configs: []emailconn.OAuth2Config{{Name: "contoso", GrantType: "client_credentials", TokenURL: "https://127.0.0.1:1/token", ClientID: "id", ClientSecret: "s"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Sender("alrets"); !errors.Is(err, emailconn.ErrNotFound) || errors.Is(err, emailconn.ErrInvalid) || err.Error() != `emailconn: connection "alrets" does not exist (did you mean "alerts"?)` {
		t.Errorf("Sender(unknown) = %v, want ErrNotFound with a suggestion", err)
	}
	if rep := r.TestConnection(context.Background(), "nope", nil); !errors.Is(rep.Err, emailconn.ErrNotFound) || strings.Contains(rep.Sentence, "not valid") {
		t.Errorf("TestConnection(unknown) = %v, %q", rep.Err, rep.Sentence)
	}
	if rep := r.TestOAuth2(context.Background(), "contso"); !errors.Is(rep.Err, emailconn.ErrNotFound) || !strings.Contains(rep.Error, `did you mean "contoso"`) {
		t.Errorf("TestOAuth2(unknown) = %v", rep.Err)
	}
	_, err = r.Sender("")
	if !errors.Is(err, emailconn.ErrNotFound) || strings.Count(err.Error(), "emailconn:") != 1 {
		t.Errorf("Sender(\"\") without grid = %q, want one prefix and ErrNotFound", err)
	}
	if _, err := new(emailconn.Registry).Sender("x"); !errors.Is(err, emailconn.ErrNotFound) {
		t.Errorf("empty registry Sender(x) = %v, want ErrNotFound", err)
	}

	cause := errors.New("disk on fire")
	_, err = emailconn.LoadConfig(iotest.ErrReader(cause))
	if !errors.Is(err, emailconn.ErrInvalid) || !errors.Is(err, cause) || !strings.HasPrefix(err.Error(), "emailconn: ") {
		t.Errorf("LoadConfig(failing reader) = %v, want ErrInvalid wrapping the cause", err)
	}
	cfg := emailconn.Config{}
	if err := cfg.Save(failingWriter{cause}); !errors.Is(err, emailconn.ErrInvalid) || !errors.Is(err, cause) || !strings.HasPrefix(err.Error(), "emailconn: ") {
		t.Errorf("Save(failing writer) = %v, want ErrInvalid wrapping the cause", err)
	}
	if _, err := emailconn.Secret("env:X").Reveal(emailconn.References{}); !errors.Is(err, emailconn.ErrInvalid) || !strings.HasPrefix(err.Error(), "emailconn: ") {
		t.Errorf("Reveal = %v", err)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// TestIssue10_08_GridNameReserved checks that no connection can be named
// "grid", so that a tool's "grid" can only mean the grid settings.
func TestIssue10_08_GridNameReserved(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"grid", "Grid", "GRID"} {
		cfg := emailconn.Config{Connections: []emailconn.Connection{{Name: name, MailServer: "m.example"}}}
		err := cfg.Validate()
		if !errors.Is(err, emailconn.ErrInvalid) || !strings.Contains(err.Error(), `connections[0].name: "`+name+`" is reserved for the grid settings`) {
			t.Errorf("connection named %q: Validate() = %v, want a refusal", name, err)
		}
	}
	if _, err := emailconn.LoadConfig(strings.NewReader(`{"connections":[{"name":"grid","mailServer":"m.example"}]}`)); err == nil {
		t.Error("LoadConfig accepted a connection named grid")
	}
	cfg := emailconn.Config{Connections: []emailconn.Connection{{Name: "gridlock", MailServer: "m.example"}}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("gridlock: %v", err)
	}
}

// TestIssue11_12_LoadConfigStrict checks that a repeated key and data after
// the object are refused, and that a huge invalid file yields a short error
// in bounded memory.
func TestIssue11_12_LoadConfigStrict(t *testing.T) {
	bad := []struct{ in, want string }{
		{`{"grid":{"mailServer":"relay.internal","enableTLS":true,"enableTLS":false}}`, `grid.enableTLS: appears more than once`},
		{`{"connections":[],"connections":[]}`, `connections: appears more than once`},
		{`{"processes":{"P":"a","P":"b"},"connections":[{"name":"a","mailServer":"m.example"},{"name":"b","mailServer":"m.example"}]}`, `processes["P"]: appears more than once`},
		{`{"oauth2Configurations":[{"name":"o","grantType":"client_credentials","tokenURL":"https://x.example/t","clientID":"i","clientSecret":"s","endpointParams":{"a":"1","a":"2"}}]}`, `oauth2Configurations[0].endpointParams["a"]: appears more than once`},
		{`{"connections":[]} {"grid":{"mailServer":"x"}}`, `configuration: is not valid JSON: invalid character '{' after top-level value (at line 1, column 20)`},
		{"{\"connections\":[]}\ngarbage", `after top-level value (at line 2, column 1)`},
	}
	for _, tt := range bad {
		_, err := emailconn.LoadConfig(strings.NewReader(tt.in))
		if !errors.Is(err, emailconn.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadConfig(%s) = %v, want %q", tt.in, err, tt.want)
		}
	}
	if _, err := emailconn.LoadConfig(strings.NewReader(`{"connections":[]}` + "\n\t ")); err != nil {
		t.Errorf("trailing white space: %v", err)
	}

	// A file of many invalid connections, near the size limit.
	var b strings.Builder
	b.WriteString(`{"connections":[`)
	for i := 0; b.Len() < emailconn.MaxConfigBytes-100; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"c%d","mailServer":"smtp://x","smtpTimeout":-1,"bogus":1}`, i)
	}
	b.WriteString(`]}`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := emailconn.LoadConfig(strings.NewReader(b.String()))
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("LoadConfig accepted it")
	}
	if n := len(err.Error()); n > 64<<10 {
		t.Errorf("the error is %d bytes, want at most 64 KiB", n)
	}
	if !strings.Contains(err.Error(), "more problems, not listed") {
		t.Errorf("the error does not say problems were left out:\n%.500s", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 30*emailconn.MaxConfigBytes {
		t.Errorf("LoadConfig of a %d-byte file allocated %d bytes", b.Len(), got)
	}
	t.Logf("%d-byte file: %d-byte error, %d bytes allocated", b.Len(), len(err.Error()), after.TotalAlloc-before.TotalAlloc)
	if _, err := emailconn.LoadConfig(strings.NewReader(strings.Repeat(" ", emailconn.MaxConfigBytes+1))); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
}

// TestIssue10_09_JSONProblems checks the "did you mean" of unknown fields at
// every level and the line and column of syntax errors.
func TestIssue10_09_JSONProblems(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"connections":[{"name":"a","mailServer":"m.example","enableTSL":true}]}`, `connections[0].enableTSL: unknown field (did you mean "enableTLS"?)`},
		{`{"conections":[]}`, `conections: unknown field (did you mean "connections"?)`},
		{`{"grid":{"mailServr":"m.example"}}`, `grid.mailServr: unknown field (did you mean "mailServer"?)`},
		{`{"oauth2Configurations":[{"name":"o","clientSecert":"x"}]}`, `oauth2Configurations[0].clientSecert: unknown field (did you mean "clientSecret"?)`},
		{`{"connections":[{"name":"a","mailServer":"m.example","zzzzzz":1}]}`, `connections[0].zzzzzz: unknown field`},
		{"{\n  \"connections\": [\n    {\"name\": \"a\",, \"mailServer\": \"x\"}\n  ]\n}", `at line 3, column 18`},
		{`{"connections":[`, `is not valid JSON: it ends before the value is complete`},
	}
	for _, tt := range tests {
		_, err := emailconn.LoadConfig(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadConfig(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
	if _, err := emailconn.LoadConfig(strings.NewReader(`{"connections":[{"name":"a","mailServer":"m.example","zzzzzz":1}]}`)); strings.Contains(err.Error(), "did you mean") {
		t.Errorf("a far name got a suggestion: %v", err)
	}
}

// TestIssue10_09_FieldNames checks the naming rule of FieldError.Field: Go
// paths for values built in Go, JSON paths for a Config, parameter names for
// function arguments — never prose.
func TestIssue10_09_FieldNames(t *testing.T) {
	t.Parallel()
	field := func(err error) string {
		var fe *emailconn.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%v holds no *FieldError", err)
		}
		return fe.Field
	}
	c := emailconn.Connection{MailServer: "m.example", ActionsBaseURL: "https://x.example/path"}
	_, rewriteErr := emailconn.RewriteActionURL("https://x.example/path", "/a")
	_, linksErr := emailconn.RewriteActionLinks("https://x.example", "http://engine/x", "")
	cfg := emailconn.Config{Connections: []emailconn.Connection{{Name: "a", MailServer: "m.example", ActionsBaseURL: "https://x.example/path"}}}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{c.Validate(), "ActionsBaseURL"},
		{cfg.Validate(), "connections[0].emailActionsBaseURL"},
		{rewriteErr, "base"},
		{linksErr, "origin"},
	} {
		if got := field(tt.err); got != tt.want {
			t.Errorf("Field of %v = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestIssue10_07_READMEPrecedenceSnippet runs the README's Configuration
// and Precedence snippets on the README's own configuration: NewRegistry
// with the References they list, then Resolve, which must print the line
// the README shows. Before, the snippet ignored NewRegistry's error and
// panicked.
func TestIssue10_07_READMEPrecedenceSnippet(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(readme)
	_, rest, _ := strings.Cut(doc, "## Configuration")
	_, rest, _ = strings.Cut(rest, "```json\n")
	jsonBlock, _, _ := strings.Cut(rest, "```")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "contoso"), []byte("client-secret\n"), 0o600)
	jsonBlock = strings.ReplaceAll(jsonBlock, "file:/run/secrets/", "file:"+filepath.ToSlash(dir)+"/")
	t.Setenv("ALERTS_SMTP_PASSWORD", "pw")

	cfg, err := emailconn.LoadConfig(strings.NewReader(jsonBlock))
	if err != nil {
		t.Fatalf("LoadConfig(README) = %v", err)
	}
	reg, err := emailconn.NewRegistry(cfg, &emailconn.Options{
		ActionOrigin: "http://engine.internal:8080",
		References:   emailconn.References{Env: []string{"ALERTS_SMTP_PASSWORD", "GOOGLE_*"}, Dirs: []string{dir, "/etc/engine/ca"}},
	})
	if err != nil {
		t.Fatalf("NewRegistry(README) = %v", err)
	}
	defer reg.Close()
	rt, err := reg.Resolve("PayrollApproval")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ = strings.Cut(doc, "fmt.Println(rt)\n// ")
	want, _, _ := strings.Cut(rest, "\n")
	if got := rt.String(); got != want {
		t.Errorf("Resolve(PayrollApproval) = %q, the README says %q", got, want)
	}
	// Without References, the same configuration is refused, not resolved.
	if _, err := emailconn.NewRegistry(cfg, nil); !errors.Is(err, emailconn.ErrInvalid) || !strings.Contains(err.Error(), "is not allowed") {
		t.Errorf("NewRegistry(README, nil) = %v, want the references refused", err)
	}
}

// TestIssue10_14_UpdateReentry checks that fn may call Replace, Update and
// Close without deadlocking, that a change made meanwhile is never lost,
// and that concurrent Updates all apply.
func TestIssue10_14_UpdateReentry(t *testing.T) {
	t.Parallel()
	// within fails the test if f does not return: before the fix, each of
	// these deadlocked on the registry's lock.
	within := func(name string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: deadlocked", name)
		}
	}
	conn := func(name string) emailconn.Connection {
		return emailconn.Connection{Name: name, MailServer: name + ".example"}
	}
	has := func(cfg emailconn.Config, name string) bool {
		return slices.ContainsFunc(cfg.Connections, func(c emailconn.Connection) bool { return c.Name == name })
	}

	r, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{conn("a")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	within("Replace from fn", func() {
		err = r.Update(func(cfg *emailconn.Config) error {
			calls++
			if calls == 1 {
				if err := r.Replace(emailconn.Config{Connections: []emailconn.Connection{conn("a"), conn("replaced")}}); err != nil {
					t.Errorf("Replace from fn = %v", err)
				}
			}
			cfg.Connections = append(cfg.Connections, conn("added"))
			return nil
		})
	})
	if err != nil || calls != 2 || !has(r.Config(), "replaced") || !has(r.Config(), "added") {
		t.Errorf("Update with a Replace inside = %v after %d calls; config %v; want both changes", err, calls, r.Config().Connections)
	}

	within("Update from fn", func() {
		err = r.Update(func(cfg *emailconn.Config) error {
			if !has(*cfg, "inner") {
				if err := r.Update(func(in *emailconn.Config) error { in.Connections = append(in.Connections, conn("inner")); return nil }); err != nil {
					return err
				}
			}
			cfg.Connections = append(cfg.Connections, conn("outer"))
			return nil
		})
	})
	if err != nil || !has(r.Config(), "inner") || !has(r.Config(), "outer") {
		t.Errorf("nested Update = %v; config %v", err, r.Config().Connections)
	}

	within("fn that always changes the registry", func() {
		err = r.Update(func(cfg *emailconn.Config) error {
			return r.Replace(r.Config())
		})
	})
	if !errors.Is(err, emailconn.ErrInvalid) || !strings.Contains(err.Error(), "fn must not change the registry itself") {
		t.Errorf("Update whose fn always replaces = %v, want an error saying so", err)
	}

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := r.Update(func(cfg *emailconn.Config) error {
				cfg.Connections = append(cfg.Connections, conn(fmt.Sprintf("c%d", i)))
				return nil
			}); err != nil {
				t.Errorf("concurrent Update %d = %v", i, err)
			}
		})
	}
	within("concurrent Updates", wg.Wait)
	for i := range 20 {
		if !has(r.Config(), fmt.Sprintf("c%d", i)) {
			t.Errorf("concurrent Update c%d was lost", i)
		}
	}

	within("Close from fn", func() {
		err = r.Update(func(cfg *emailconn.Config) error {
			r.Close()
			cfg.Connections = append(cfg.Connections, conn("late"))
			return nil
		})
	})
	if !errors.Is(err, emailconn.ErrClosed) {
		t.Errorf("Update after Close from fn = %v, want ErrClosed", err)
	}
	if err := r.Update(func(*emailconn.Config) error { return nil }); !errors.Is(err, emailconn.ErrClosed) {
		t.Errorf("Update after Close = %v, want ErrClosed", err)
	}
}
