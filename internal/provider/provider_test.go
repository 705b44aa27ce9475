package provider

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestIssue14_40_Defaults(t *testing.T) {
	for _, c := range []struct {
		name string
		want Limits
	}{
		{Microsoft365, Limits{MaxSessions: 3, MessagesPerMinute: 30, RecipientsPerDay: 10000, MaxRecipientsPerMessage: 500}},
		{Google, Limits{MaxRecipientsPerMessage: 100, MessagesPerDay: 2000, RecipientsPerDay: 10000}},
		{SES, Limits{MaxRecipientsPerMessage: 50, IdleTimeout: 10 * time.Second}},
	} {
		got, ok := Defaults(c.name)
		if !ok || got != c.want {
			t.Errorf("Defaults(%q) = %+v, %v; want %+v, true", c.name, got, ok, c.want)
		}
		if !Known(c.name) {
			t.Errorf("Known(%q) = false", c.name)
		}
	}
	for _, name := range []string{"", "none", "Microsoft365", "gmail"} {
		if l, ok := Defaults(name); ok || l != (Limits{}) || Known(name) {
			t.Errorf("Defaults(%q) = %+v, %v; want zero, false", name, l, ok)
		}
	}
}

func TestIssue14_41_Override(t *testing.T) {
	ms, _ := Defaults(Microsoft365)
	got := ms.Override(Limits{MaxSessions: 2, MessagesPerDay: 900, IdleTimeout: time.Minute})
	want := Limits{MaxSessions: 2, MessagesPerMinute: 30, RecipientsPerDay: 10000, MaxRecipientsPerMessage: 500, MessagesPerDay: 900, IdleTimeout: time.Minute}
	if got != want {
		t.Errorf("Override = %+v, want %+v", got, want)
	}
	all := Limits{1, 2, 3, 4, 5, 6}
	if got := ms.Override(all); got != all {
		t.Errorf("Override(all set) = %+v, want %+v", got, all)
	}
	if got := ms.Override(Limits{}); got != ms {
		t.Errorf("Override(zero) changed the defaults: %+v", got)
	}
	again, _ := Defaults(Microsoft365)
	if again != ms {
		t.Errorf("Override mutated the defaults table")
	}
}
