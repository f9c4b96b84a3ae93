package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// maxAckWait bounds waitUntilAcknowledged: a client that stops reading never lets
// the last bytes be acknowledged, and the fault must end some time.
const maxAckWait = 10 * time.Second

// waitUntilAcknowledged waits until the kernel at the other end has acknowledged every
// byte written to conn, so that a reset (SO_LINGER 0), which throws away the unsent
// part of the send queue, loses nothing. SIOCOUTQ tells how many bytes of the queue
// are unsent or unacknowledged; it is polled every millisecond, at most maxAckWait,
// or less if ctx ends or the connection fails.
func waitUntilAcknowledged(ctx context.Context, conn net.Conn) error {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return errors.New("wait for acknowledgements: the connection is not TCP")
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return fmt.Errorf("wait for acknowledgements: %w", err)
	}
	give := time.Now().Add(maxAckWait)
	for time.Now().Before(give) {
		var queued, soErr int
		var ioctlErr error
		if err := raw.Control(func(fd uintptr) {
			queued, ioctlErr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
			if ioctlErr == nil {
				soErr, ioctlErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
			}
		}); err != nil {
			return fmt.Errorf("wait for acknowledgements: %w", err)
		}
		switch {
		case ioctlErr != nil:
			return fmt.Errorf("wait for acknowledgements: %w", ioctlErr)
		case soErr != 0:
			return fmt.Errorf("wait for acknowledgements: %w", unix.Errno(soErr)) // the client reset or left
		case queued == 0:
			return nil
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return fmt.Errorf("wait for acknowledgements: %w", err)
		}
	}
	return nil // waited long enough: reset anyway, the client was not reading
}
