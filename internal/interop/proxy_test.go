package interop

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// proxy is a TCP proxy on 127.0.0.1 in front of a plaintext SMTP server.
// It records what the client sent and can rewrite the AUTH line of the
// server's EHLO reply, to make Mailpit look like a server that offers
// only some mechanisms. It only works on plaintext sessions.
type proxy struct {
	t        *testing.T
	ln       net.Listener
	target   string
	authMech string // when not "", the AUTH extension offers only these
	addExt   string // when not "", an extension added to the EHLO reply (issue 17)

	mu     sync.Mutex
	client bytes.Buffer // every byte clients sent
	conns  []net.Conn
	wg     sync.WaitGroup
}

var authLine = regexp.MustCompile(`(?i)^(250[- ])AUTH[ =]`)

// newProxy starts a proxy to target, closed when the test ends.
func newProxy(t *testing.T, target, authMech string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &proxy{t: t, ln: ln, target: target, authMech: authMech}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// newExtProxy is newProxy with ext added to the server's EHLO reply.
func newExtProxy(t *testing.T, target, ext string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &proxy{t: t, ln: ln, target: target, addExt: ext}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// sessions returns the number of connections the proxy forwarded.
func (p *proxy) sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// sent returns what clients sent so far.
func (p *proxy) sent() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client.String()
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.t.Errorf("proxy: dialling %s: %v", p.target, err)
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { // client to server, recorded
			defer p.wg.Done()
			defer s.Close()
			_, _ = io.Copy(s, io.TeeReader(c, lockedWriter{&p.mu, &p.client}))
		}()
		go func() { // server to client, line by line
			defer p.wg.Done()
			defer c.Close()
			br := bufio.NewReader(s)
			for {
				line, err := br.ReadString('\n')
				if p.authMech != "" {
					if m := authLine.FindStringSubmatch(line); m != nil {
						line = m[1] + "AUTH " + p.authMech + "\r\n"
					}
				}
				if p.addExt != "" && strings.HasPrefix(strings.ToUpper(line), "250-ENHANCEDSTATUSCODES") {
					line += "250-" + p.addExt + "\r\n" // Mailpit lists it in every EHLO reply, never last
				}
				if _, werr := io.WriteString(c, line); werr != nil || err != nil {
					return
				}
			}
		}()
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}
