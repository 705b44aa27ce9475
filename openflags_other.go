//go:build !unix

package emailconn

import "os"

// openReadNonblock opens a file for reading; systems without FIFOs in the
// file system need no O_NONBLOCK.
const openReadNonblock = os.O_RDONLY
