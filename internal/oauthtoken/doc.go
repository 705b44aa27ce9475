// Package oauthtoken keeps one cached, refreshed OAuth2 access token per
// named OAuth2 configuration, for SMTP AUTH XOAUTH2 and OAUTHBEARER.
//
//	c := oauthtoken.New(oauthtoken.Config{
//		Name:         "contoso",
//		GrantType:    oauthtoken.GrantClientCredentials,
//		TokenURL:     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
//		ClientID:     "…",
//		ClientSecret: func() (string, error) { return os.Getenv("CONTOSO_SECRET"), nil },
//		Scopes:       []string{"https://outlook.office365.com/.default"},
//	})
//	tok, err := c.Token(ctx)
//	… // AUTH XOAUTH2 with tok.AccessToken
//	// if the server rejected it:
//	c.Invalidate(tok.AccessToken)
//
// The token requests themselves are made by golang.org/x/oauth2 and
// golang.org/x/oauth2/clientcredentials, so response parsing and client
// authentication follow that module. Its caching (reuseTokenSource) is not
// used: it keeps the context of the first caller for every refresh, holds a
// mutex across the HTTP request, cannot forget a token the server rejected
// and does not report a rotated refresh token. Nor is its probe of the
// client authentication style, which repeats a timed-out request (see
// Config.AuthStyle). Cache.Refresh fetches a new token on demand with one
// request, for a "Test" button.
//
// # Refresh
//
// A Cache holds at most one access token. Token returns it until it is
// inside the refresh window before its expiry (Config.RefreshWindow: 5
// minutes, never more than half the token's lifetime), then the next
// caller fetches a new one. If that proactive refresh fails, the cached
// token is returned as long as it is still valid, and no new attempt is
// made for 5 seconds. A token without an expiry is used until Invalidate.
//
// # Concurrency
//
// A Cache is safe for concurrent use. At most one token request per Cache
// is in flight; every caller that needs a new token waits for that one.
// The request does not run on any caller's context but on its own, bounded
// by Config.RequestTimeout, so a caller that gives up (its context ends,
// and it gets the context's error) neither cancels the request for the
// others nor poisons later refreshes. Caches share nothing but idle HTTP
// connections: a hung token endpoint of one configuration never blocks
// another.
//
// # Rotation
//
// With the refresh_token grant, a server may return a new refresh token
// with each access token (Microsoft Entra ID does). The Cache then uses the
// new refresh token from then on and hands it to Config.OnRotate before
// the new access token is returned to anyone, so that it can be saved.
// The Cache is the one owner of the current refresh token: whoever shows
// or saves the configuration reads it with Cache.RefreshToken instead of
// keeping a copy.
//
// # Errors
//
// A failed token request is an *Error holding only the HTTP status and the
// RFC 6749 §5.2 error code, description and URI, cleaned of control
// characters and truncated. ErrInvalidGrant (the configuration must be
// authorised again) and ErrInvalidClient (wrong client ID or secret) are in
// its Unwrap chain, as are ErrTimeout when the endpoint did not answer
// within Config.RequestTimeout and ErrUnreachable when it could not be
// reached. An internal timeout is never context.DeadlineExceeded: a caller
// gets a context's error only when its own context ended.
//
// # Secrets
//
// No error, String, GoString, Format or LogValue of this package contains a
// client secret, refresh token or access token; in particular the response
// body of a failed request, which golang.org/x/oauth2's RetrieveError
// prints, is never included. Tokens returned by Cache.Token carry the access
// token only: the refresh token leaves the Cache only through
// Config.OnRotate and Cache.RefreshToken, for its owner to save. Inspect decodes the
// claims of a JWT access token for diagnosis without including the token.
package oauthtoken
