// Command testserver runs the tutorial's test HTTP server on its own, outside any stage
// (make server runs it).
//
// Without -addr, every stage starts the same server inside its own process. That is the
// simplest way to follow the course, but then one process holds both ends of every
// connection: a run of 5,000 simultaneous requests needs 10,000 file descriptors there.
// For runs with thousands of connections start this server in another terminal and point
// the stage at it with -addr 127.0.0.1:8000; the client process then holds only its own
// ends, and the stage still reads the server's record over HTTP (/stats?run=TAG).
//
// The server listens on a loopback address only (127.0.0.1:8000 by default; -addr [::1]:8000
// for IPv6; port 0 picks a free port, and the line it prints says which) and stops cleanly on Ctrl-C (SIGINT)
// or SIGTERM, closing every connection first.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"blocking-to-epoll/internal/testserver"
)

func main() {
	addr := flag.String("addr", testserver.StandaloneAddr, "loopback address to listen on (host:port, such as 127.0.0.1:0 or [::1]:0)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *addr, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

// run serves on addr until ctx ends (when the process is told to stop), after printing
// the address it got to out: with port 0 that is the only way to learn it.
func run(ctx context.Context, addr string, out io.Writer) error {
	s, err := testserver.Start(addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "test server listening on http://%s (stats: /stats?run=TAG, timeline: /stats/timeline?run=TAG)\n", s.Addr())

	<-ctx.Done()
	return s.Close()
}
