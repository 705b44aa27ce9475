//go:build !unix

package smtpconn

// Idle reports true: without a non-blocking peek, a closed pooled session
// is found when its next command fails, and redialled then.
func (c *Conn) Idle() bool { return true }
