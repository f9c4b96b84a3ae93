//go:build unix

package main

import "golang.org/x/sys/unix"

// kernelRelease is the kernel's release string (uname -r), "" if uname fails.
func kernelRelease() string {
	var uts unix.Utsname
	if unix.Uname(&uts) != nil {
		return ""
	}
	return unix.ByteSliceToString(uts.Release[:])
}
