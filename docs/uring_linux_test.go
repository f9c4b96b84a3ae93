//go:build linux

package docs

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// uringMissing says why io_uring cannot be used here (nil when it can): the
// docs blocks that run stage 06's -model io_uring skip then, as the model
// itself refuses to start.
func uringMissing() error {
	var params [120]byte // struct io_uring_params: the kernel fills it in
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 {
		return fmt.Errorf("io_uring_setup: %w", errno)
	}
	unix.Close(int(fd))
	return nil
}
