//go:build unix

package emailconn

import (
	"os"
	"syscall"
)

// openReadNonblock opens a file for reading without blocking on a FIFO or a
// device that a path was swapped for after it was checked, nor following a
// symbolic link put in its place.
const openReadNonblock = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOFOLLOW
