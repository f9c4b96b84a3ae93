//go:build unix

package main

// machine.go says where the figures come from: every table and picture
// names the machine it was measured on.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A machine is where figures come from. Its fields have no JSON tags: a
// comparison's JSON, saved for -pictures -comparison, names them so.
type machine struct {
	OS, Arch, Kernel, CPU, Go string
	Cores, MaxFDs             int
	// Somaxconn is the most a listen backlog can be here (Linux's
	// net.core.somaxconn; 0 when unknown). net.Listen asks for it, so it is
	// the test server's accept queue: connects past it wait for a SYN resent.
	Somaxconn int
}

// describeMachine describes this machine. A comparison's JSON carries the
// description of the machine it ran on, which may be another.
func describeMachine() machine {
	m := machine{OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(), Cores: runtime.NumCPU(), CPU: cpuModel()}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		m.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	// The programs measured inherit this limit (ulimit -n): it is how many
	// requests most models can have in flight at once.
	var limit unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &limit) == nil {
		m.MaxFDs = int(min(limit.Cur, 1<<30))
	}
	if text, err := os.ReadFile("/proc/sys/net/core/somaxconn"); err == nil {
		m.Somaxconn, _ = strconv.Atoi(strings.TrimSpace(string(text)))
	}
	return m
}

// cpuModel reads the processor's name from /proc/cpuinfo on Linux, or asks
// sysctl on macOS and FreeBSD.
func cpuModel() string {
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				return strings.TrimSpace(value)
			}
		}
	}
	for _, key := range []string{"machdep.cpu.brand_string", "hw.model"} {
		if out, err := exec.Command("sysctl", "-n", key).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			return string(bytes.TrimSpace(out))
		}
	}
	return "unknown CPU"
}

// String is the machine line of every picture's subtitle.
func (m machine) String() string {
	system := m.OS
	if m.Kernel != "" {
		system += " " + m.Kernel
	}
	return fmt.Sprintf("%d cores · %s (%s) · %s · %s", m.Cores, m.CPU, m.Arch, system, m.Go)
}
