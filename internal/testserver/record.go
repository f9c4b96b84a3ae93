package testserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"sync"
	"time"
)

// maxEntries bounds the memory the record uses: past it the oldest entries are
// dropped. The counters are kept apart, so they stay exact however long the server runs.
const maxEntries = 200_000

// Stats is what the server observed for the requests carrying one run tag.
type Stats struct {
	Run          string `json:"run"`
	Requests     int    `json:"requests"`       // how many arrived
	InFlight     int    `json:"in_flight"`      // being handled right now
	PeakInFlight int    `json:"peak_in_flight"` // the most handled at once
	// Entries are the requests in arrival order. They are nil, and left out of the
	// JSON, when the counters alone were asked for (/stats?entries=none, FetchStats).
	Entries []Entry `json:"entries,omitzero"`
}

// Entry is one request as the server saw it.
type Entry struct {
	Run        string    `json:"run"`
	ID         string    `json:"id"`     // the req= query parameter
	Host       string    `json:"host"`   // the Host header
	Target     string    `json:"target"` // request URI as sent, e.g. "/s?wd=hello&req=1"
	Fault      string    `json:"fault,omitempty"`
	Arrived    time.Time `json:"arrived"`
	Finished   time.Time `json:"finished"`    // zero while in flight
	Status     int       `json:"status"`      // status code sent; 0 if no HTTP response was sent (close, reset, garbage, banner, endlessheader)
	BodyBytes  int64     `json:"body_bytes"`  // body bytes written: the payload, without chunked framing or bytes past Content-Length
	BodySHA256 string    `json:"body_sha256"` // hex SHA-256 of those body bytes ("" when no body)
}

// counter follows how many requests arrived and how many are being handled at once.
type counter struct {
	requests, inFlight, peak int
	arrival                  chan struct{} // closed at the next arrival; nil when nobody waits for one
}

func (c *counter) arrive() {
	c.requests++
	c.inFlight++
	c.peak = max(c.peak, c.inFlight)
	if c.arrival != nil {
		close(c.arrival) // wake the requests waiting in waitForArrivals
		c.arrival = nil
	}
}

func (c *counter) leave() {
	c.inFlight--
}

// record is everything the server observed. Handlers run concurrently, so every
// access holds mu.
type record struct {
	mu      sync.Mutex
	entries []*Entry            // arrival order, at most maxEntries
	all     counter             // every request
	byRun   map[string]*counter // requests with a run tag, by tag
}

func (r *record) init() {
	r.byRun = make(map[string]*counter)
}

// arrive adds e to the record as arrived now and returns it for finish.
func (r *record) arrive(e Entry) *Entry {
	r.mu.Lock()
	defer r.mu.Unlock()

	// Taking the time under the lock keeps the entries in order of their Arrived time.
	e.Arrived = time.Now()
	if len(r.entries) == maxEntries {
		r.entries[0] = nil // let the garbage collector have the oldest entry
		r.entries = r.entries[1:]
	}
	r.entries = append(r.entries, &e)

	r.all.arrive()
	if e.Run != "" {
		c := r.byRun[e.Run]
		if c == nil {
			c = &counter{}
			r.byRun[e.Run] = c
		}
		c.arrive()
	}
	return &e
}

// waitForArrivals waits until n requests tagged run (every request for "")
// have arrived, at most maxGatherWait, or less if ctx ends. This is gather=:
// a client that really has n requests open at once gets all n held together,
// so the peak in flight is exactly n whatever the machine's speed; a client
// that sends them one by one sees each wait the full maxGatherWait, and a
// peak of 1.
func (r *record) waitForArrivals(ctx context.Context, run string, n int) error {
	timer := time.NewTimer(maxGatherWait)
	defer timer.Stop()
	for {
		r.mu.Lock()
		c := &r.all
		if run != "" {
			c = r.byRun[run] // present: the waiting request itself arrived under this tag
		}
		if c.requests >= n {
			r.mu.Unlock()
			return nil
		}
		if c.arrival == nil {
			c.arrival = make(chan struct{})
		}
		arrival := c.arrival
		r.mu.Unlock()

		select {
		case <-arrival:
		case <-timer.C:
			return nil // waited long enough: answer anyway, the peak tells the truth
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finish completes an entry returned by arrive with what was sent back.
func (r *record) finish(e *Entry, status int, bodyBytes int64, bodySHA256 string) {
	r.mu.Lock()
	defer r.mu.Unlock()

	e.Finished = time.Now()
	e.Status = status
	e.BodyBytes = bodyBytes
	e.BodySHA256 = bodySHA256
	r.all.leave()
	if e.Run != "" {
		r.byRun[e.Run].leave()
	}
}

// stats copies out the record of one run tag ("" for every request): the counters,
// and the entries too when withEntries is set. Without them the copy is small and
// quick however many requests the run made.
func (r *record) stats(run string, withEntries bool) Stats {
	r.mu.Lock()
	defer r.mu.Unlock()

	c := &r.all
	if run != "" {
		c = r.byRun[run]
		if c == nil {
			c = &counter{} // a tag nobody used yet
		}
	}
	st := Stats{
		Run:          run,
		Requests:     c.requests,
		InFlight:     c.inFlight,
		PeakInFlight: c.peak,
	}
	if !withEntries {
		return st
	}
	st.Entries = []Entry{} // never nil when asked for, so the JSON says [] rather than leaving it out
	for _, e := range r.entries {
		if run == "" || e.Run == run {
			st.Entries = append(st.Entries, *e)
		}
	}
	return st
}

// exchange is one recorded request on its way through the handlers. It wraps the
// ResponseWriter so the record learns the status and body that went out (counted and
// hashed as they are written, never kept), and it completes the entry exactly once.
// Only the request's own handler goroutine uses it.
type exchange struct {
	http.ResponseWriter
	rec    *record
	entry  *Entry
	out    io.Writer // where body bytes go: the ResponseWriter, or the raw connection after a hijack
	status int       // 0 until a status line is sent
	bytes  int64
	sum    hash.Hash
	done   bool
}

// newExchange records the arrival of r.
func (s *Server) newExchange(w http.ResponseWriter, r *http.Request) *exchange {
	q := r.URL.Query()
	entry := s.rec.arrive(Entry{
		Run:    q.Get("run"),
		ID:     q.Get("req"),
		Host:   r.Host,
		Target: r.RequestURI,
		Fault:  q.Get("fault"),
	})
	return &exchange{ResponseWriter: w, rec: &s.rec, entry: entry, out: w, sum: sha256.New()}
}

// WriteHeader notes the status before net/http sends it.
func (x *exchange) WriteHeader(code int) {
	if x.status == 0 {
		x.status = code
	}
	x.ResponseWriter.WriteHeader(code)
}

// Write sends body bytes, counting and hashing the ones that went out.
func (x *exchange) Write(p []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK // what net/http sends when Write comes before WriteHeader
	}
	n, err := x.out.Write(p)
	x.count(p[:n])
	return n, err
}

// count adds p to the body the record reports, without sending it. A fault that
// writes its own framing around the body (fault=chunked) sends both in one write
// and counts only the payload.
func (x *exchange) count(p []byte) {
	x.bytes += int64(len(p))
	x.sum.Write(p) // a hash.Hash never returns an error
}

// finish completes the record entry; later calls do nothing.
func (x *exchange) finish() {
	if x.done {
		return
	}
	x.done = true
	sum := ""
	if x.bytes > 0 {
		sum = hex.EncodeToString(x.sum.Sum(nil))
	}
	x.rec.finish(x.entry, x.status, x.bytes, sum)
}
