package testserver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// fetchStatsTimeout bounds FetchStats: the stats endpoint answers at once, so a
// server that takes longer is not the test server (or is not there at all).
const fetchStatsTimeout = 2 * time.Second

// serveStats answers GET /stats?run=TAG with the record of that run as JSON.
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	st := s.Stats(r.URL.Query().Get("run"))
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
// make server) for the Stats of the run tagged run, over HTTP (GET /stats?run=TAG).
// It fails with a clear error when the server there is not the project's test server.
//
// It speaks HTTP/1.0 on a connection of its own and closes it before returning, so it
// leaves no descriptor and no goroutine behind in the caller, whose tests count both.
func FetchStats(addr, run string) (Stats, error) {
	conn, err := net.DialTimeout("tcp", addr, fetchStatsTimeout)
	if err != nil {
		return Stats{}, fmt.Errorf("fetch stats from %s: %w", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(fetchStatsTimeout)); err != nil {
		return Stats{}, fmt.Errorf("fetch stats from %s: %w", addr, err)
	}

	request := "GET /stats?run=" + url.QueryEscape(run) + " HTTP/1.0\r\nHost: " + addr + "\r\n\r\n"
	if _, err := io.WriteString(conn, request); err != nil {
		return Stats{}, fmt.Errorf("fetch stats from %s: send request: %w", addr, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return Stats{}, fmt.Errorf("fetch stats from %s: the answer is not HTTP, so it is not the project's test server (start one with make server): %w", addr, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		return Stats{}, fmt.Errorf("fetch stats from %s: GET /stats answered %q, so it is not the project's test server (start one with make server)", addr, resp.Status)
	}
	var st Stats
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields() // a JSON answer from some other server is not our Stats
	if err := dec.Decode(&st); err != nil {
		return Stats{}, fmt.Errorf("fetch stats from %s: the answer is not stats JSON, so it is not the project's test server (start one with make server): %w", addr, err)
	}
	if st.Run != run {
		return Stats{}, fmt.Errorf("fetch stats from %s: asked for run %q but got run %q, so it is not the project's test server (start one with make server)", addr, run, st.Run)
	}
	return st, nil
}
