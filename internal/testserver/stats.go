package testserver

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// maxStatsAnswer is the most FetchStats reads from a server, headers included. The
// test server's answer to /stats?entries=none is a few hundred bytes however large the
// run, so anything longer is not from it; and a broken or hostile server (one that
// sends an endless status line, say) cannot make the caller hold more than this.
const maxStatsAnswer = 64 << 10

// notOurs ends the errors that mean the server at the address is some other server.
const notOurs = "so it is not the project's test server (start one with make server)"

// serveStats answers GET /stats?run=TAG with the record of that run as JSON, and
// GET /stats?run=TAG&entries=none with its counters alone.
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var withEntries bool
	switch q.Get("entries") {
	case "", "all":
		withEntries = true
	case "none":
		withEntries = false
	default:
		http.Error(w, fmt.Sprintf("entries=%q: want none or all", q.Get("entries")), http.StatusBadRequest)
		return
	}
	st := s.rec.stats(q.Get("run"), withEntries)
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")  // people read it with curl too
	enc.SetEscapeHTML(false) // keep the & of a target readable instead of \u0026
	// Stats always encodes, so an error means the client went away.
	_ = enc.Encode(st)
}

// serveTimeline answers GET /stats/timeline?run=TAG with that run drawn by DrawTimeline.
func (s *Server) serveTimeline(w http.ResponseWriter, r *http.Request) {
	st := s.Stats(r.URL.Query().Get("run"))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	DrawTimeline(w, st.Spans(), 0)
}

// FetchStats asks the test server at addr (host:port, for example one started with
// make server) for the counters of the run tagged run, over HTTP
// (GET /stats?run=TAG&entries=none). The Stats it returns has no Entries.
//
// It gives up at deadline, whatever the server does: it connects, sends and reads
// with that deadline, and fails at once if it has already passed. It reads at most
// maxStatsAnswer bytes (64 KiB), and it fails with a clear error when the server there
// is not the project's test server: an answer that is too long, is not HTTP, lacks the
// mark (MarkHeader: MarkValue) or is not the stats JSON.
//
// It speaks HTTP/1.0 on a connection of its own and closes it before returning, so it
// leaves no descriptor and no goroutine behind in the caller, whose tests count both.
func FetchStats(addr, run string, deadline time.Time) (Stats, error) {
	if deadline.IsZero() {
		return Stats{}, fmt.Errorf("fetch stats from %s: no deadline given", addr)
	}
	if late := time.Since(deadline); late >= 0 {
		return Stats{}, fmt.Errorf("fetch stats from %s: the deadline passed %v before it began", addr, late.Round(time.Millisecond))
	}

	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		return Stats{}, fmt.Errorf("fetch stats from %s: %w", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return Stats{}, fmt.Errorf("fetch stats from %s: %w", addr, err)
	}
	return fetchStatsOn(conn, addr, run)
}

// fetchStatsOn is FetchStats on a connection already made, with its deadline set.
// It is apart so that a test can count the bytes it reads.
func fetchStatsOn(conn net.Conn, addr, run string) (Stats, error) {
	request := "GET /stats?run=" + url.QueryEscape(run) + "&entries=none HTTP/1.0\r\nHost: " + addr + "\r\n\r\n"
	if _, err := io.WriteString(conn, request); err != nil {
		return Stats{}, fmt.Errorf("fetch stats from %s: send request: %w", addr, err)
	}

	// Every read goes through answer, so the whole answer (status line, headers and
	// body) is at most maxStatsAnswer bytes: past that, answer reports end of file
	// and the parsing fails. answer.N == 0 then tells that apart from a real end.
	answer := &io.LimitedReader{R: conn, N: maxStatsAnswer}
	failed := func(what string, err error) error {
		switch {
		case answer.N == 0:
			return fmt.Errorf("fetch stats from %s: the answer is longer than %d bytes, %s", addr, maxStatsAnswer, notOurs)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("fetch stats from %s: no whole answer before the deadline: %w", addr, err)
		}
		return fmt.Errorf("fetch stats from %s: the answer is not %s, %s: %w", addr, what, notOurs, err)
	}

	resp, err := http.ReadResponse(bufio.NewReader(answer), nil)
	if err != nil {
		return Stats{}, failed("HTTP", err)
	}
	// No resp.Body.Close: it would read the rest of the body, up to the deadline if
	// the server keeps the connection open. Closing the connection is enough.
	if got := resp.Header.Get(MarkHeader); got != MarkValue {
		return Stats{}, fmt.Errorf("fetch stats from %s: the answer has no %s: %s header, %s", addr, MarkHeader, MarkValue, notOurs)
	}
	if resp.StatusCode != http.StatusOK {
		return Stats{}, fmt.Errorf("fetch stats from %s: GET /stats answered %q, %s", addr, resp.Status, notOurs)
	}
	var st Stats
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields() // a JSON answer from some other server is not our Stats
	if err := dec.Decode(&st); err != nil {
		return Stats{}, failed("stats JSON", err)
	}
	if st.Run != run {
		return Stats{}, fmt.Errorf("fetch stats from %s: asked for run %q but got run %q, %s", addr, run, st.Run, notOurs)
	}
	return st, nil
}
