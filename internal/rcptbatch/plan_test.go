package rcptbatch

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func addrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("r%03d@example.com", i)
	}
	return out
}

// server is a fake SMTP server's view of one message: it accepts at most
// limit recipients per transaction (452 4.5.3 after that) and records
// which recipients each committed transaction delivered to.
type server struct {
	limit     int
	delivered map[string]int
}

// run drives p against s, committing every transaction.
func (s *server) run(t *testing.T, p *Plan) {
	t.Helper()
	for guard := 0; ; guard++ {
		if guard > 1000 {
			t.Fatal("no end")
		}
		batch := p.Next()
		if batch == nil {
			return
		}
		var accepted []string
		for k := range batch {
			if s.limit > 0 && len(accepted) == s.limit {
				rest := make([]int, 0, len(batch)-k)
				for j := k; j < len(batch); j++ {
					rest = append(rest, j)
				}
				if !p.Defer(rest...) {
					t.Fatal("Defer reports no progress after accepted recipients")
				}
				break
			}
			p.Accept(k)
			accepted = append(accepted, batch[k])
		}
		p.Commit()
		for _, a := range accepted {
			s.delivered[a]++
		}
	}
}

// TestIssue14_60_150RecipientsThrough100: 150 recipients through a server
// that takes 100 per transaction are delivered once each, in two
// transactions, whether the limit is configured or found by the 452.
func TestIssue14_60_150RecipientsThrough100(t *testing.T) {
	for _, max := range []int{0, 100, 150, 1000} {
		t.Run(fmt.Sprint("max=", max), func(t *testing.T) {
			rcpts := addrs(150)
			p := New(rcpts, max)
			s := &server{limit: 100, delivered: map[string]int{}}
			s.run(t, p)
			if p.Transactions() != 2 {
				t.Errorf("%d transactions, want 2", p.Transactions())
			}
			for _, r := range rcpts {
				if s.delivered[r] != 1 {
					t.Errorf("%s delivered %d times", r, s.delivered[r])
				}
			}
			if done := p.Recipients(Done); !slices.Equal(done, rcpts) {
				t.Errorf("Done has %d recipients, want all 150 in order", len(done))
			}
		})
	}
	t.Run("max=50", func(t *testing.T) {
		p := New(addrs(150), 50)
		s := &server{limit: 100, delivered: map[string]int{}}
		s.run(t, p)
		if p.Transactions() != 3 || len(s.delivered) != 150 {
			t.Errorf("%d transactions, %d delivered; want 3, 150", p.Transactions(), len(s.delivered))
		}
	})
}

// TestIssue14_61_DeferWithoutProgress: a 452 to the first RCPT is not a
// recipient limit.
func TestIssue14_61_DeferWithoutProgress(t *testing.T) {
	p := New(addrs(3), 0)
	p.Next()
	if p.Defer(0, 1, 2) {
		t.Fatal("Defer with nothing accepted reports progress")
	}
	p.Abort(true)
	if got := p.Next(); len(got) != 3 {
		t.Fatalf("after the abort Next = %v, want all 3 again", got)
	}
}

// TestIssue14_62_NeverTwiceAfterAcceptance: recipients of a committed or
// lost transaction never go into another; those of a refused one may.
func TestIssue14_62_NeverTwiceAfterAcceptance(t *testing.T) {
	rc := addrs(6)
	p := New(rc, 2)

	b := p.Next() // r0, r1: committed
	p.Accept(0)
	p.Accept(1)
	p.Commit()
	b = p.Next() // r2, r3: lost after "."
	p.Accept(0)
	p.Accept(1)
	p.Lost()
	b = p.Next() // r4, r5: r4 refused at RCPT, r5 accepted, DATA refused 4xx
	if !slices.Equal(b, rc[4:6]) {
		t.Fatalf("third transaction %v, want %v", b, rc[4:6])
	}
	p.Refuse(0)
	p.Accept(1)
	p.Abort(true)
	b = p.Next() // r5 again
	if !slices.Equal(b, rc[5:6]) {
		t.Fatalf("after a refused transaction Next = %v, want %v", b, rc[5:6])
	}
	p.Accept(0)
	p.Abort(false) // refused for good this time
	if b := p.Next(); b != nil {
		t.Fatalf("Next = %v after every recipient ended", b)
	}
	for s, want := range map[State][]string{Done: rc[0:2], Unknown: rc[2:4], Refused: rc[4:6]} {
		if got := p.Recipients(s); !slices.Equal(got, want) {
			t.Errorf("Recipients(%v) = %v, want %v", s, got, want)
		}
	}
}

func TestIssue14_63_RetryAndRequeue(t *testing.T) {
	rc := addrs(3)
	p := New(rc, 0)
	p.Next()
	p.Accept(0)
	p.Retry(1) // 450 mailbox busy
	p.Accept(2)
	p.Commit()
	if got := p.Recipients(Deferred); !slices.Equal(got, rc[1:2]) {
		t.Fatalf("Deferred = %v", got)
	}
	if p.Next() != nil {
		t.Fatal("a Deferred recipient came back without Requeue")
	}
	if n := p.Requeue(); n != 1 {
		t.Fatalf("Requeue = %d", n)
	}
	if got := p.Next(); !slices.Equal(got, rc[1:2]) {
		t.Fatalf("after Requeue Next = %v", got)
	}
}

func TestIssue14_64_Misuse(t *testing.T) {
	var zero Plan
	if zero.Next() != nil || zero.Open() {
		t.Fatal("zero Plan has recipients")
	}
	zero.Commit()
	zero.Accept(0)
	p := New([]string{"a@x", "b@x", "a@x", "c@x", "b@x"}, 0)
	b := p.Next()
	if !slices.Equal(b, []string{"a@x", "b@x", "c@x"}) {
		t.Fatalf("duplicates kept: %v", b)
	}
	if p.Next() != nil || !p.Open() {
		t.Fatal("Next while a transaction is open")
	}
	for _, k := range []int{-1, 3, 99} {
		p.Accept(k)
		p.Refuse(k)
		p.Retry(k)
		p.Defer(k)
	}
	p.Accept(0)
	p.Accept(0)
	p.Refuse(0) // already accepted: ignored
	p.Commit()  // b@x and c@x were never answered: back to Pending
	if got := p.Recipients(Done); !slices.Equal(got, []string{"a@x"}) {
		t.Fatalf("Done = %v", got)
	}
	if got := p.Next(); !slices.Equal(got, []string{"b@x", "c@x"}) {
		t.Fatalf("unanswered recipients: Next = %v", got)
	}
	for s := Pending; s <= Unknown; s++ {
		if s.String() == "state?" {
			t.Errorf("State %d has no name", s)
		}
	}
	if State(99).String() != "state?" {
		t.Error("State(99) has a name")
	}
}

// TestIssue14_65_RandomServer drives plans against servers with random
// limits, refusals and transaction outcomes: no recipient is ever
// delivered twice, none after its transaction was lost, and the plan's
// Done list is exactly what the server delivered.
func TestIssue14_65_RandomServer(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 65))
	for run := range 500 {
		n := 1 + rng.IntN(60)
		rc := addrs(n)
		p := New(rc, rng.IntN(12))
		limit := 1 + rng.IntN(10)
		delivered := map[string]int{}
		final := map[string]bool{} // done or unknown: must never be sent again
		for guard := 0; ; guard++ {
			if guard > 10000 {
				t.Fatalf("run %d: no end", run)
			}
			b := p.Next()
			if b == nil {
				break
			}
			var acc []string
			for k, r := range b {
				if final[r] {
					t.Fatalf("run %d: %s sent again after its transaction ended", run, r)
				}
				if len(acc) == limit {
					var rest []int
					for j := k; j < len(b); j++ {
						rest = append(rest, j)
					}
					p.Defer(rest...)
					break
				}
				switch x := rng.IntN(20); {
				case x == 0:
					p.Refuse(k)
				case x == 1:
					p.Retry(k)
				default:
					p.Accept(k)
					acc = append(acc, r)
				}
			}
			switch x := rng.IntN(10); {
			case x == 0:
				p.Abort(true)
			case x == 1:
				p.Abort(false)
			case x == 2:
				p.Lost()
				for _, r := range acc {
					final[r] = true
				}
			default:
				p.Commit()
				for _, r := range acc {
					delivered[r]++
					final[r] = true
				}
			}
		}
		var want []string
		for _, r := range rc {
			if delivered[r] > 1 {
				t.Fatalf("run %d: %s delivered %d times", run, r, delivered[r])
			}
			if delivered[r] == 1 {
				want = append(want, r)
			}
		}
		if got := p.Recipients(Done); !slices.Equal(got, want) {
			t.Fatalf("run %d: Done = %v, delivered %v", run, got, want)
		}
		if left := p.Recipients(Pending); len(left) != 0 {
			t.Fatalf("run %d: %v still pending", run, left)
		}
	}
}
