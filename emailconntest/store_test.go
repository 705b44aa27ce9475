package emailconntest_test

import (
	"testing"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
	"github.com/emailconn/emailconn/internal/storetest"
)

// TestNewStoreConformance: the test kit's store meets the Store contract,
// on real time (the suite's expiry cases wait out short ttls).
func TestNewStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) emailconn.Store { return emailconntest.NewStore() },
		storetest.Options{ShortTTL: 20 * time.Millisecond})
}
