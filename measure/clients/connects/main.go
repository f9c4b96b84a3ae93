//go:build unix

// Command connects is not a client: it is the floor under stage 05's connect
// ramp, which measure prints with stage 05's targets (make compare). It
// does the least a client of n connections must do before its last request
// can start: n nonblocking sockets, each connect started, one after
// another, with no epoll, no request and no reading. measure builds it beside
// the stages and runs it as
//
//	connects -addr HOST:PORT -n N
//
// It prints one JSON object: how long starting every connect took
// (ramp_ms). On loopback most of that is the kernel's: connect runs the
// handshake inside the call, both ends of it, while the server accepts on
// the other cores. Then it closes every socket and exits.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	addr := flag.String("addr", "", "the test server's host:port")
	n := flag.Int("n", 5000, "how many connects to start")
	flag.Parse()
	to, family, err := sockaddr(*addr)
	if err != nil || *n < 1 {
		fmt.Fprintf(os.Stderr, "connects: -addr HOST:PORT (%v) and -n of 1 or more are needed\n", err)
		os.Exit(2)
	}
	fds := make([]int, 0, *n)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	start := time.Now()
	for range *n {
		fd, err := nonblockingSocket(family)
		if err != nil {
			fail(err)
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, to); err != nil && err != unix.EINPROGRESS {
			fail(fmt.Errorf("connect to %s: %w", *addr, err))
		}
	}
	ramp := time.Since(start)
	json.NewEncoder(os.Stdout).Encode(map[string]any{"connects": *n, "ramp_ms": float64(ramp.Microseconds()) / 1000})
}

// sockaddr is addr as connect(2) takes it, and its family.
func sockaddr(addr string) (unix.Sockaddr, int, error) {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		return &unix.SockaddrInet4{Port: tcp.Port, Addr: [4]byte(ip4)}, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: tcp.Port}
	copy(sa.Addr[:], tcp.IP.To16())
	return sa, unix.AF_INET6, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "connects:", err)
	os.Exit(1)
}
