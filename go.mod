module github.com/emailconn/emailconn

go 1.26.0

require (
	github.com/emersion/go-message v0.18.2
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/emersion/go-smtp v0.25.1
	go.uber.org/goleak v1.3.0
	golang.org/x/oauth2 v0.38.0
)
