package emailconn

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// tokenRequestTimeout bounds each token request made with a tokenClient;
// tests shorten it.
var tokenRequestTimeout = 30 * time.Second

// errRegistryClosed is the error of a token request after Registry.Close.
var errRegistryClosed = &wrapped{msg: "the registry is closed", err: ErrClosed}

// A tokenClient is the HTTP client for token requests that a Registry (or
// one OAuth2Config.Test call) makes when Options.HTTPClient is nil: a pool of
// connections of its own, dialling under Options.DialPolicy, following no
// redirect (a redirected POST would resend the client secret), each request
// bounded by tokenRequestTimeout. Once closed it refuses requests. It is
// safe for concurrent use.
type tokenClient struct {
	*http.Client
	t      *http.Transport
	closed atomic.Bool
}

func newTokenClient(o *Options) *tokenClient {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if g := o.guard(); g != nil {
		t.Proxy = nil // the policy must judge the endpoint itself, not a proxy
		t.DialContext = g.DialContext(&net.Dialer{Timeout: tokenRequestTimeout})
	}
	c := &tokenClient{t: t}
	c.Client = &http.Client{
		Transport:     c,
		Timeout:       tokenRequestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// ownTokenClient makes o's token requests use a new tokenClient when o has
// no HTTPClient, and returns it; it returns nil when o has one, which is
// the caller's to manage.
func ownTokenClient(o *Options) *tokenClient {
	if o.HTTPClient != nil {
		return nil
	}
	c := newTokenClient(o)
	o.HTTPClient = c.Client
	return c
}

// RoundTrip sends req on the client's own transport, or refuses it once
// the client is closed.
func (c *tokenClient) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.closed.Load() {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errRegistryClosed
	}
	return c.t.RoundTrip(req)
}

// CloseIdleConnections closes the transport's idle connections.
func (c *tokenClient) CloseIdleConnections() { c.t.CloseIdleConnections() }

// close refuses later requests and closes the idle connections, so that no
// keep-alive connection to a token endpoint outlives the Registry. A
// request still running is not cut off; its connection is closed when it
// ends (after CloseIdleConnections, an http.Transport closes connections
// that become idle until a new request wants one, and none comes). A nil
// *tokenClient does nothing.
func (c *tokenClient) close() {
	if c == nil {
		return
	}
	c.closed.Store(true)
	c.t.CloseIdleConnections()
}
