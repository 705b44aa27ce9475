package bench

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user and system) the process has used so
// far. The sink runs in the same process, so a benchmark's CPU time per
// message is the client's plus the sink's; the sink's share is the same
// for every client. Unlike msg/s it hardly moves when other work shares
// the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
