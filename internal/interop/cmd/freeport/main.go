// Command freeport prints N distinct TCP ports that are free on 127.0.0.1,
// one a line, for servers that cannot listen on port 0 themselves.
//
// Usage:
//
//	freeport N
//
// All N listeners are open at once, so the ports are distinct; they are
// closed before freeport exits, so another process may take one before the
// caller does. Callers retry with new ports when a server fails to bind.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

func main() {
	n := 0
	if len(os.Args) == 2 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	if n <= 0 || n > 100 {
		fmt.Fprintln(os.Stderr, "usage: freeport N (1 ≤ N ≤ 100)")
		os.Exit(2)
	}
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "freeport:", err)
			os.Exit(1)
		}
		ls = append(ls, l)
	}
	for _, l := range ls {
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		_ = l.Close()
	}
}
