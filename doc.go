// Package emailconn sends a workflow engine's notifications by email through
// named SMTP configurations called Email Connections.
package emailconn
