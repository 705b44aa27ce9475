package compose

import (
	"strings"
	"testing"
)

// TestIssue13_2_BoundaryFromMessageID: with a Message-ID, a message
// renders to the same bytes every time (golden files); without one, the
// boundaries stay random. Either way they start with "=_".
func TestIssue13_2_BoundaryFromMessageID(t *testing.T) {
	a, b := newBoundary("x@example.com", "mixed"), newBoundary("x@example.com", "mixed")
	if a != b || !strings.HasPrefix(a, "=_") || len(a) != 2+48 {
		t.Errorf("newBoundary(x, mixed) = %q, then %q; want one value, =_ and 48 hex digits", a, b)
	}
	if c := newBoundary("x@example.com", "related"); c == a {
		t.Errorf("the related and mixed boundaries are both %q", c)
	}
	if d := newBoundary("y@example.com", "mixed"); d == a {
		t.Errorf("two Message-IDs give the boundary %q", d)
	}
	if r1, r2 := newBoundary("", "mixed"), newBoundary("", "mixed"); r1 == r2 || !strings.HasPrefix(r1, "=_") {
		t.Errorf("without a Message-ID: %q and %q, want two random boundaries", r1, r2)
	}
}
