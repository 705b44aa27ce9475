module github.com/emailconn/emailconn/internal/interop

go 1.26.0

require github.com/emailconn/emailconn v0.0.0

require (
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6 // indirect
	github.com/emersion/go-smtp v0.25.1 // indirect
	golang.org/x/oauth2 v0.38.0 // indirect
)

// The library under test is this repository's root.
replace github.com/emailconn/emailconn => ../..
