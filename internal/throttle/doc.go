// Package throttle holds the building blocks of the provider limits of
// issue 14, for the sender to consult: a sliding-window message rate
// limiter (Window, behind the Rate interface), a session semaphore
// (Semaphore, behind Slots) and a connection-wide pause (Pause), all
// reading an injectable Clock so that tests run on a FakeClock.
//
// # Guarantees
//
// Window lets no more than Limit messages start in any interval of Length,
// and drains a backlog in the least time that rule allows. Window and
// Semaphore serve waiters first come, first served; a waiter whose context
// ends returns the context's error promptly and holds nothing; both report
// how long the caller waited, for the Receipt and the debug log.
//
// # Sharing across engine nodes
//
// Rate and Slots are the seams for issue 15: an implementation that keeps
// the window's start times and the session leases in a shared store
// stands behind the same interfaces, and the sender does not change.
//
// DESIGN-limits.md in this directory says where the sender consults each
// of them, with the reply classification of internal/replyclass and the
// provider defaults of internal/provider.
package throttle
