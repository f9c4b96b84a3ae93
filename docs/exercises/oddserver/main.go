//go:build exercises

// Command oddserver is a server that misbehaves in the ways some exercises
// need, and that the project's test server does not offer from a stage's
// command line. Point a stage at it with -addr:
//
//	go run -tags exercises ./docs/exercises/oddserver -mode blackhole
//	go run ./01-blocking -addr 127.0.0.1:PORT -n 2 -connect-timeout 500ms
//
// The modes:
//
//	blackhole    never answers a connect: a listening socket with a backlog of
//	             0 that never accepts, its queue filled by one connection of its
//	             own, so the kernel drops every further SYN (exercises 01.1, 06.2)
//	big          answers every request at once with a body of -size bytes, then
//	             closes (exercise 05.2)
//	first-fails  closes request 1 without a word, holds every other request open
//	             and never answers it (exercise 06.3)
//
// It listens on 127.0.0.1 only, prints its address, and runs until stopped
// (Ctrl-C). The exercises' checkers make the same servers themselves
// (docs/exercises/checks).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	mode := flag.String("mode", "", "how to misbehave: blackhole, big or first-fails")
	size := flag.Int("size", 30000, "body size in bytes, for -mode big")
	flag.Parse()

	var addr string
	var err error
	switch *mode {
	case "blackhole":
		addr, err = blackHole()
	case "big":
		addr, err = serve(func(conn net.Conn, _ string) { answer(conn, *size) })
	case "first-fails":
		addr, err = serve(func(conn net.Conn, requestLine string) {
			switch {
			case strings.Contains(requestLine, "/stats?"):
				answer(conn, 10) // the stage's closing question; not the test server, so no stats
			case firstRequest.MatchString(requestLine):
				// closed without a word: that request fails
			default:
				_, _ = io.Copy(io.Discard, conn) // held open until the client closes
			}
		})
	default:
		fmt.Fprintln(os.Stderr, "oddserver: -mode must be blackhole, big or first-fails")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "oddserver:", err)
		os.Exit(1)
	}
	fmt.Printf("oddserver -mode %s listening on %s (Ctrl-C to stop)\n", *mode, addr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, unix.SIGTERM)
	<-stop
}

// firstRequest matches the request line of a stage's request 1.
var firstRequest = regexp.MustCompile(`[?&]req=1\b`)

// blackHole makes a port where connect(2) never completes.
func blackHole() (string, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return "", err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return "", err
	}
	if err := unix.Listen(fd, 0); err != nil { // a queue of one connection at most
		return "", err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	// Nothing ever accepts: fill the queue with our own connections until
	// the kernel stops completing them.
	for range 8 {
		if _, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err != nil {
			return addr, nil // kept open (never closed) until the program ends
		}
	}
	return "", fmt.Errorf("the listen queue of %s never filled: this system does not drop SYNs that way", addr)
}

// serve accepts connections on 127.0.0.1 and hands each, with its request
// line, to handle, which runs in a goroutine of its own; the connection is
// closed when handle returns.
func serve(handle func(conn net.Conn, requestLine string)) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				requestLine, err := br.ReadString('\n')
				for err == nil { // the rest of the header, up to its blank line
					var line string
					if line, err = br.ReadString('\n'); line == "\r\n" || line == "\n" {
						break
					}
				}
				if err == nil {
					handle(conn, strings.TrimSpace(requestLine))
				}
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// answer writes a whole HTTP/1.0 response with a body of size bytes.
func answer(conn net.Conn, size int) {
	header := fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", size)
	_, _ = conn.Write(append([]byte(header), bytes.Repeat([]byte("x"), size)...))
}
