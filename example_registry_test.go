package emailconn_test

import (
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/emailconn/emailconn"
)

func ExampleLoadConfig() {
	os.Setenv("ALERTS_SMTP_PASSWORD", "hunter2") // normally set by the deployment
	cfg, err := emailconn.LoadConfig(strings.NewReader(`{
  "connections": [
    {"name": "workunit-alerts", "mailServer": "smtp.example.com:587", "enableTLS": true,
     "smtpConnectionTimeout": 10, "smtpTimeout": 60,
     "userName": "alerts@example.com", "password": "env:ALERTS_SMTP_PASSWORD",
     "from": "alerts@example.com", "emailActionsBaseURL": "https://approvals.example.com"}
  ],
  "grid": {"mailServer": "relay.internal:25", "from": "engine@example.com", "to": ["ops@example.com"]},
  "processes": {"PayrollApproval": "workunit-alerts"}
}`))
	if err != nil {
		log.Fatal(err)
	}
	c := cfg.Connections[0]
	fmt.Println(c.Name, c.MailServer, c.ConnectTimeout, c.SendTimeout)
	fmt.Println("password:", c.Password) // a reference is shown, a literal never
	fmt.Println("grid:", cfg.Grid.MailServer)

	// A configuration with mistakes yields one error listing all of them.
	_, err = emailconn.LoadConfig(strings.NewReader(`{
  "connections": [{"name": "x", "mailServer": "smtp.example.com:99999", "smtpTimeout": -5, "enableTSL": true}],
  "processes": {"Payroll": "y"}
}`))
	fmt.Println(err)
	// Output:
	// workunit-alerts smtp.example.com:587 10s 1m0s
	// password: env:ALERTS_SMTP_PASSWORD
	// grid: relay.internal:25
	// emailconn: connections[0].smtpTimeout: must not be negative
	// emailconn: connections[0].enableTSL: unknown field (did you mean "enableTLS"?)
	// emailconn: connections[0].mailServer: "smtp.example.com:99999": port "99999" must be a number from 1 to 65535
	// emailconn: processes["Payroll"]: connection "y" does not exist (known: "x")
}

func ExampleRegistry_Resolve() {
	reg, err := emailconn.NewRegistry(emailconn.Config{
		Connections: []emailconn.Connection{{
			Name: "workunit-alerts", MailServer: "smtp.example.com", EnableTLS: true,
			From: "alerts@example.com", ActionsBaseURL: "https://approvals.example.com",
		}},
		Grid:      &emailconn.Connection{MailServer: "relay.internal", From: "engine@example.com", To: []string{"ops@example.com"}},
		Processes: map[string]string{"PayrollApproval": "workunit-alerts"},
	}, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	// A process with a connection: the grid's addresses do not apply.
	rt, err := reg.Resolve("PayrollApproval")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rt)
	// The same process, for a User Action node that names its recipients.
	rt, _ = reg.Resolve("PayrollApproval", "approver@example.com")
	fmt.Println(rt.To, rt.NodeRecipients)
	// A process without a connection uses the grid settings.
	rt, _ = reg.Resolve("Onboarding")
	fmt.Println(rt)
	// Output:
	// process "PayrollApproval": connection "workunit-alerts" (smtp.example.com); from alerts@example.com [connection]; to (none); action links https://approvals.example.com [connection]
	// [approver@example.com] true
	// process "Onboarding": grid settings (relay.internal); from engine@example.com [grid]; to ops@example.com [grid]
}
