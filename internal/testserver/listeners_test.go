//go:build unix

package testserver

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBlackHoleNeverCompletesAHandshake: a connect to the black hole is still
// waiting when the client's own timeout ends it.
func TestBlackHoleNeverCompletesAHandshake(t *testing.T) {
	for _, network := range networks {
		t.Run(network.name, func(t *testing.T) {
			network.skip(t)
			goroutinesBefore := runtime.NumGoroutine()
			h, err := BlackHole(network.name)
			if err != nil {
				t.Fatal(err)
			}
			if ip := h.Addr().IP; !ip.IsLoopback() || (ip.To4() != nil) != (network.name == "tcp4") {
				t.Errorf("Addr %v, want the %s loopback", h.Addr(), network.name)
			}
			conn, err := net.DialTimeout(network.name, h.Addr().String(), 300*time.Millisecond)
			if err == nil {
				conn.Close()
				t.Fatal("the connect completed, want it to wait for a handshake that never comes")
			}
			if !isTimeout(err) {
				t.Errorf("connect: %v, want a timeout", err)
			}
			if err := h.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := h.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			noGoroutinesLeft(t, goroutinesBefore)
		})
	}
}

// TestDeafListenerNeverReads: a large request fills the deaf listener's small receive
// buffer and the client's send buffer, and the write cannot finish; Close closes the
// accepted connection and stops the accepting goroutine.
func TestDeafListenerNeverReads(t *testing.T) {
	for _, network := range networks {
		t.Run(network.name, func(t *testing.T) {
			network.skip(t)
			goroutinesBefore := runtime.NumGoroutine()
			d, err := Deaf(network.name)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial(network.name, d.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			// Nothing reads, so the write can only end at its deadline, however slow
			// the machine: the deadline bounds the test, it measures nothing.
			conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			request := make([]byte, 32<<20)
			n, err := conn.Write(request)
			if err == nil || !isTimeout(err) || n == len(request) {
				t.Errorf("wrote %d of %d bytes, error %v; want a timeout before the end", n, len(request), err)
			}

			waitFor(t, "the connection to be accepted", func() bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				return len(d.conns) == 1
			})
			if runtime.GOOS == "linux" {
				if got := receiveBuffer(t, d.conns[0]); got > 2*deafReceiveBuffer {
					t.Errorf("the accepted connection's SO_RCVBUF is %d, want at most %d (64 KiB, doubled by Linux)", got, 2*deafReceiveBuffer)
				}
			}

			if err := d.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			// The deaf end closed with unread bytes, so the client sees a reset or EOF.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a guard against a hung test
			if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Errorf("read after Close: %v, want the connection closed", err)
			}
			conn.Close()
			noGoroutinesLeft(t, goroutinesBefore)
		})
	}
}

// receiveBuffer is a connection's SO_RCVBUF.
func receiveBuffer(t *testing.T, conn net.Conn) int {
	t.Helper()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var getErr error
	raw.Control(func(fd uintptr) { size, getErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	if getErr != nil {
		t.Fatal(getErr)
	}
	return size
}

func TestListenersRefuseOtherNetworks(t *testing.T) {
	for _, network := range []string{"tcp", "udp", "unix", ""} {
		if h, err := BlackHole(network); err == nil || !strings.Contains(err.Error(), "tcp4 or tcp6") {
			if h != nil {
				h.Close()
			}
			t.Errorf("BlackHole(%q): error %v, want one asking for tcp4 or tcp6", network, err)
		}
		if d, err := Deaf(network); err == nil || !strings.Contains(err.Error(), "tcp4 or tcp6") {
			if d != nil {
				d.Close()
			}
			t.Errorf("Deaf(%q): error %v, want one asking for tcp4 or tcp6", network, err)
		}
	}
}
