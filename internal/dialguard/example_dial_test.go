package dialguard_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/emailconn/emailconn/internal/dialguard"
)

// The token endpoint of a tenant's OAuth2 provider (threat T14): the HTTP
// client connects only where the policy allows, including after redirects.
func ExamplePolicy_DialContext() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "token")
	}))
	defer srv.Close()

	var p dialguard.Policy // refuses loopback, where the test server is
	client := &http.Client{Transport: &http.Transport{
		DialContext: p.DialContext(&net.Dialer{Timeout: 10 * time.Second}),
		// Proxy is nil: with a proxy, the proxy's address is what gets checked.
	}}
	defer client.CloseIdleConnections()

	_, err := client.Get(srv.URL)
	fmt.Println(errors.Is(err, dialguard.ErrBlocked))

	// Show an untrusted user nothing but ErrBlocked's text.
	if errors.Is(err, dialguard.ErrBlocked) {
		fmt.Println(dialguard.ErrBlocked)
	}
	// Output:
	// true
	// destination not allowed
}

// Installing Control in a dialer of one's own. The error names the address
// the dialer refused, but not why.
func ExamplePolicy_Control() {
	var p dialguard.Policy
	d := &net.Dialer{ControlContext: p.Control}
	for _, addr := range []string{"169.254.169.254:80", "10.0.0.5:25"} {
		_, err := d.DialContext(context.Background(), "tcp", addr)
		fmt.Println(err)
	}
	// Output:
	// dial tcp 169.254.169.254:80: destination not allowed
	// dial tcp 10.0.0.5:25: destination not allowed
}
