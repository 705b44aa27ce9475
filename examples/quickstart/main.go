// Command quickstart shows emailconn end to end, offline: it starts a local
// SMTP server (emailconntest's, with STARTTLS and AUTH, on loopback) and a
// local OAuth2 token endpoint, builds a configuration with two Email
// Connections — one with Basic auth, one with OAuth2 — and grid settings,
// resolves three processes, sends a workunit-failure notification whose
// approve link is rewritten with the connection's Email Actions Base URL,
// sends an onboarding notice through the OAuth2 connection, and prints what
// the server received.
//
// It imports only emailconn and its public test kit emailconntest, so it can
// be copied out of the repository as it is.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

func main() {
	log.SetFlags(0)

	// 1. A local token endpoint (client credentials) and a local mail
	// server: STARTTLS with a certificate from a throwaway CA, AUTH PLAIN
	// for alerts@example.com, and XOAUTH2 with the tokens the endpoint
	// issued.
	var tokens atomic.Int32
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if _, secret, _ := r.BasicAuth(); r.PostFormValue("grant_type") != "client_credentials" || secret != "engine-client-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":"local-access-token-%d","token_type":"Bearer","expires_in":3600}`, tokens.Add(1))
	}))
	defer idp.Close()
	srv := emailconntest.NewServer(&emailconntest.Options{
		TLS:      "starttls",
		Username: "alerts@example.com", Password: "correct horse battery staple",
		ValidateToken: func(user, token string) bool {
			return user == "hr@example.com" && strings.HasPrefix(token, "local-access-token-")
		},
	})
	defer srv.Close()

	// 2. The engine's configuration: two connections and the grid settings.
	// Connection fills in the server's address, its credentials and its CA
	// (RootCAs, from code: no file is written). A real deployment loads the
	// same configuration from JSON with LoadConfig (see the README), with
	// its mail server's certificate from a real CA or its private CA's file
	// as caFile, and its secrets as "env:" or "file:" references.
	alerts := srv.Connection("workunit-alerts")
	alerts.From = "Workunit Alerts <alerts@example.com>"
	alerts.ActionsBaseURL = "https://approvals.example.com"

	hr := srv.Connection("hr")
	hr.AuthType, hr.Username, hr.Password = "oauth2", "hr@example.com", ""
	hr.OAuth2Config = "local-idp"
	hr.From, hr.To = "hr@example.com", []string{"hr-team@example.com"}

	grid := srv.Connection("")
	grid.From, grid.To = "engine@example.com", []string{"ops@example.com"}

	cfg := emailconn.Config{
		Connections: []emailconn.Connection{alerts, hr},
		OAuth2Configs: []emailconn.OAuth2Config{{
			Name: "local-idp", GrantType: "client_credentials", TokenURL: idp.URL + "/token",
			ClientID: "engine", ClientSecret: "engine-client-secret", Scopes: []string{"smtp.send"},
		}},
		Grid:      &grid,
		Processes: map[string]string{"PayrollApproval": "workunit-alerts", "Onboarding": "hr"},
	}

	// 3. The registry resolves each process to its route. The engine
	// generates action links with its own origin; ActionOrigin tells the
	// library which links those are.
	reg, err := emailconn.NewRegistry(cfg, &emailconn.Options{ActionOrigin: "http://engine.example.com:8080"})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	for _, p := range []string{"PayrollApproval", "Onboarding", "NightlyBatch"} {
		rt, err := reg.Resolve(p)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(rt)
	}

	// 4. A workunit failed: notify the approver named on the User Action
	// node, with an approve link.
	rt, err := reg.Resolve("PayrollApproval", "approver@example.com")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	approve := "http://engine.example.com:8080/actions/approve?wu=4711&sig=Zm9v"
	receipt, err := rt.Send(ctx, &emailconn.Message{
		Subject: "Workunit 4711 failed: approval needed",
		Text:    "Workunit 4711 (PayrollApproval) failed at step Calculate.\nApprove the retry: " + approve + "\n",
		HTML:    `<p>Workunit 4711 (PayrollApproval) failed at step <b>Calculate</b>.</p><p><a href="` + approve + `">Approve the retry</a></p>`,
		Headers: map[string]string{"X-Workunit": "4711"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\nsent %s over %s with %s: %s\n", receipt.MessageID, receipt.TLSVersion, receipt.Mechanism, receipt.Reply)

	// 5. Onboarding goes through the OAuth2 connection: the token comes from
	// the token endpoint, is cached, and is sent with XOAUTH2.
	rt, err = reg.Resolve("Onboarding")
	if err != nil {
		log.Fatal(err)
	}
	receipt, err = rt.Send(ctx, &emailconn.Message{Subject: "New hire starts Monday", Text: "Prepare a laptop for J. Doe."})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sent %s over %s with %s (token requests so far: %d)\n", receipt.MessageID, receipt.TLSVersion, receipt.Mechanism, tokens.Load())

	// 6. What the server received, decoded.
	msgs, err := srv.WaitMessages(ctx, 2)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Printf("\nserver received from %s for %v:\n", m.From, m.To)
		fmt.Printf("  From: %s\n  Subject: %s\n", m.Header.Get("From"), m.Subject)
		fmt.Printf("  text/plain:\n    %s\n", strings.ReplaceAll(strings.TrimSpace(m.Text), "\n", "\n    "))
	}
}
