package emailconn

import (
	"time"

	"github.com/emailconn/emailconn/internal/throttle"
)

// SetLimitSeams sets the test seams of the limits (issue 14) on o: the
// clock of the rate, pause and quotas, and the length of a provider's
// minute and day, so that black-box tests run in seconds.
func SetLimitSeams(o *Options, clock throttle.Clock, minute, day time.Duration) {
	o.clock, o.limitMinute, o.limitDay = clock, minute, day
}
