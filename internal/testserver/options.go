package testserver

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Caps on what one request may ask for, so that no request can make the server
// allocate or wait without bound.
const (
	maxDelay      = 60 * time.Second // longest delay=
	maxSize       = 64 << 20         // largest size= in bytes; bodies are made on the fly, never held whole
	maxChunk      = 1 << 20          // largest chunk=; one piece is allocated per drip or chunked body
	maxPause      = time.Second      // longest pause= between drip pieces, chunks or header lines
	maxDripTotal  = 60 * time.Second // longest a whole drip or chunked body may take: pieces × pause
	maxGather     = 100_000          // largest gather=
	maxGatherWait = 10 * time.Second // longest a request waits for the others of its gather=
)

// Defaults for the parameters a request leaves out.
const (
	defaultDripSize     = 4096
	defaultLargeSize    = 1 << 20
	defaultTruncateSize = 4096
	defaultChunk        = 256
	defaultChunkedChunk = 1000 // not a power of two, so its hex size (3e8) has letters in it
	defaultDripPause    = 20 * time.Millisecond
	defaultChunkedPause = 5 * time.Millisecond
	defaultHeaderPause  = 50 * time.Millisecond
)

// options are the query parameters that shape a recorded response.
type options struct {
	id     string        // req=
	gather int           // gather=: first wait until this many requests of the run have arrived
	delay  time.Duration // delay=: wait this long before answering
	fault  string        // fault=: "" for a normal answer
	size   int64         // size=: body bytes for the faults that send a body of the pattern
	chunk  int           // chunk=: bytes per drip piece or per chunk of fault=chunked
	pause  time.Duration // pause=: between drip pieces or chunks, or before each slow header line
}

// parseOptions reads and checks the query parameters. Its error is meant for the
// client: it says which parameter is wrong and why.
func parseOptions(q url.Values) (options, error) {
	o := options{id: q.Get("req"), fault: q.Get("fault")}
	if _, known := faults[o.fault]; o.fault != "" && !known {
		known := strings.Join(slices.Sorted(maps.Keys(faults)), ", ")
		return o, fmt.Errorf("unknown fault=%q (known: %s)", o.fault, known)
	}

	var err error
	if o.gather, err = intParam(q, "gather", 0, 0, maxGather); err != nil {
		return o, err
	}
	if o.delay, err = durationParam(q, "delay", 0, 0, maxDelay); err != nil {
		return o, err
	}
	size, err := intParam(q, "size", defaultSize(o.fault), 0, maxSize)
	if err != nil {
		return o, err
	}
	o.size = int64(size)
	if o.chunk, err = intParam(q, "chunk", defaultChunkSize(o.fault), 1, maxChunk); err != nil {
		return o, err
	}
	if o.pause, err = durationParam(q, "pause", defaultPause(o.fault), 0, maxPause); err != nil {
		return o, err
	}

	if o.fault == "drip" || o.fault == "chunked" {
		pieces := (o.size + int64(o.chunk) - 1) / int64(o.chunk)
		if total := time.Duration(pieces) * o.pause; total > maxDripTotal {
			return o, fmt.Errorf("%s of %d pieces with pause=%v would take %v, over the %v cap", o.fault, pieces, o.pause, total, maxDripTotal)
		}
	}
	return o, nil
}

func defaultSize(fault string) int {
	switch fault {
	case "large":
		return defaultLargeSize
	case "truncate", "stall":
		return defaultTruncateSize
	}
	return defaultDripSize
}

func defaultChunkSize(fault string) int {
	if fault == "chunked" {
		return defaultChunkedChunk
	}
	return defaultChunk
}

func defaultPause(fault string) time.Duration {
	switch fault {
	case "slowheader":
		return defaultHeaderPause
	case "chunked":
		return defaultChunkedPause
	}
	return defaultDripPause
}

// intParam reads the whole number q[name], or def when it is absent, and checks that
// it lies in [low, high].
func intParam(q url.Values, name string, def, low, high int) (int, error) {
	text := q.Get(name)
	if text == "" {
		return def, nil
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a whole number", name, text)
	}
	if n < low || n > high {
		return 0, fmt.Errorf("%s=%d is outside %d..%d", name, n, low, high)
	}
	return n, nil
}

// durationParam reads the Go duration q[name] (such as 200ms), or def when it is
// absent, and checks that it lies in [low, high].
func durationParam(q url.Values, name string, def, low, high time.Duration) (time.Duration, error) {
	text := q.Get(name)
	if text == "" {
		return def, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a Go duration such as 200ms", name, text)
	}
	if d < low || d > high {
		return 0, fmt.Errorf("%s=%v is outside %v..%v", name, d, low, high)
	}
	return d, nil
}
