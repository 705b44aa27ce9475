// Command waitready waits until servers answer.
//
// Usage:
//
//	waitready [-timeout D] [-pid PID] TARGET...
//
// A TARGET is "tcp:HOST:PORT" (ready when a TCP connection succeeds) or an
// http:// URL (ready when a GET returns 200). With -pid, waitready fails
// as soon as that process no longer exists, so a server that could not
// start is reported at once instead of after the timeout. It exits 0 when
// every target is ready and 1 when the timeout expires first.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 30*time.Second, "how long to wait for all targets")
	pid := flag.Int("pid", 0, "fail when this process exits")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: waitready [-timeout D] [-pid PID] tcp:HOST:PORT|http://URL...")
		os.Exit(2)
	}
	deadline := time.Now().Add(*timeout)
	client := &http.Client{Timeout: time.Second}
	for _, target := range flag.Args() {
		for {
			err := probe(client, target)
			if err == nil {
				break
			}
			if *pid > 0 && syscall.Kill(*pid, 0) != nil {
				fmt.Fprintf(os.Stderr, "waitready: process %d exited before %s was ready\n", *pid, target)
				os.Exit(1)
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "waitready: %s not ready after %v: %v\n", target, *timeout, err)
				os.Exit(1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func probe(client *http.Client, target string) error {
	if addr, ok := strings.CutPrefix(target, "tcp:"); ok {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
	if !strings.HasPrefix(target, "http://") {
		return errors.New("target must be tcp:HOST:PORT or an http:// URL")
	}
	resp, err := client.Get(target)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
