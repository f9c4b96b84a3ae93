//go:build unix

package main

// netstat.go reads the kernel's TCP counters around each run, to show what
// happens when a burst of connects passes the server's listen backlog: the
// kernel drops the SYNs it has no room for (ListenOverflows, ListenDrops),
// and the client resends them after its initial retransmission timeout, a
// second on Linux (TCPSynRetrans). Linux only: elsewhere the columns say
// n/a.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
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
