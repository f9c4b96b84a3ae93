//go:build unix

package main

// netstat.go reads the kernel's TCP counters around each run, to show what
// happens when a burst of connects passes the server's listen backlog: the
// kernel drops the SYNs it has no room for (ListenOverflows, ListenDrops),
// and the client resends them after its initial retransmission timeout, a
// second on Linux (TCPSynRetrans). It also reads the test server's CPU
// time (processCPU), the other half of what a run costs the machine. Linux
// only: elsewhere the columns say n/a.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// kernelCounts are the counters of /proc/net/netstat that tell the story,
// as the difference over one run. They count for the whole machine, not the
// one run: on a quiet machine, that is the run.
type kernelCounts struct {
	ListenOverflows int64 `json:"listen_overflows"` // SYNs or handshakes dropped with the accept queue full
	ListenDrops     int64 `json:"listen_drops"`     // every SYN dropped at a listening socket, overflows included
	SynRetrans      int64 `json:"tcp_syn_retrans"`  // SYNs (and SYN-ACKs) sent again after no answer
}

// netstatFile is where Linux keeps the counters; a test points it elsewhere.
var netstatFile = "/proc/net/netstat"

// readKernelCounts reads the counters now; nil when this system has no
// /proc/net/netstat, or it does not hold them.
func readKernelCounts() *kernelCounts {
	data, err := os.ReadFile(netstatFile)
	if err != nil {
		return nil
	}
	values, err := parseNetstat(string(data))
	if err != nil {
		return nil
	}
	c := &kernelCounts{}
	for name, field := range map[string]*int64{"ListenOverflows": &c.ListenOverflows, "ListenDrops": &c.ListenDrops, "TCPSynRetrans": &c.SynRetrans} {
		v, ok := values["TcpExt:"+name]
		if !ok {
			return nil
		}
		*field = v
	}
	return c
}

// parseNetstat reads /proc/net/netstat: for each group two lines, the
// first naming the counters ("TcpExt: SyncookiesSent …"), the second giving
// their values in the same order ("TcpExt: 0 …").
func parseNetstat(text string) (map[string]int64, error) {
	values := map[string]int64{}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, numbers := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) != len(numbers) || len(names) == 0 || names[0] != numbers[0] {
			return nil, fmt.Errorf("%s: lines %d and %d do not pair up", netstatFile, i+1, i+2)
		}
		for j := 1; j < len(names); j++ {
			v, err := strconv.ParseInt(numbers[j], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", netstatFile, names[j], err)
			}
			values[names[0]+names[j]] = v
		}
	}
	return values, nil
}

// since is what the counters went up by from before to c; nil when either
// is unknown.
func (c *kernelCounts) since(before *kernelCounts) *kernelCounts {
	if c == nil || before == nil {
		return nil
	}
	return &kernelCounts{c.ListenOverflows - before.ListenOverflows, c.ListenDrops - before.ListenDrops, c.SynRetrans - before.SynRetrans}
}

// clockTicks is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100
// per second on every Linux that Go runs on.
const clockTicks = 100

// processCPU is the CPU time, user and system, that process pid (all its
// threads) has used so far, from /proc/PID/stat; false when it cannot be
// read (not Linux, pid 0, or the process is gone).
func processCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// "pid (comm) state ppid …": the name may hold spaces and parentheses,
	// so the fields are counted from the last ')'. utime and stime are
	// fields 14 and 15 of the line, the 12th and 13th after it.
	text := string(data)
	end := strings.LastIndexByte(text, ')')
	if end < 0 {
		return 0, false
	}
	fields := strings.Fields(text[end+1:])
	if len(fields) < 13 {
		return 0, false
	}
	utime, errU := strconv.ParseInt(fields[11], 10, 64)
	stime, errS := strconv.ParseInt(fields[12], 10, 64)
	if errU != nil || errS != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, true
}
