package testserver

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"
	"time"
)

// serveRecorded answers every request except the stats endpoints, recording it
// from the moment it arrives until the handler returns.
func (s *Server) serveRecorded(w http.ResponseWriter, r *http.Request) {
	x := s.newExchange(w, r)
	// Deferred, so it runs when the handler returns: before net/http sends what is
	// still buffered and closes an HTTP/1.0 connection.
	defer x.finish()

	o, err := parseOptions(r.URL.Query())
	if err != nil {
		http.Error(x, err.Error(), http.StatusBadRequest)
		return
	}
	if err := s.rec.waitForArrivals(r.Context(), r.URL.Query().Get("run"), o.gather); err != nil {
		return // the client went away or the server is closing: nobody to answer
	}
	if err := sleep(r.Context(), o.delay); err != nil {
		return // the client went away or the server is closing: nobody to answer
	}
	if o.fault != "" {
		// A fault's error says why it could not finish misbehaving, nearly always
		// because the client went away or the server is closing: there is nobody
		// left to tell, and the record already shows how far it got.
		_ = faults[o.fault](s, x, r, o)
		return
	}

	switch r.URL.Path {
	case "/s":
		searchPage(x, r)
	case "/page":
		writePage(x, "Test page", "Request: "+o.id)
	default:
		http.NotFound(x, r)
	}
}

// sleep waits for d, or less if ctx ends first because the client went away or the
// server is closing.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait %v: %w", d, ctx.Err())
	}
}

// searchPage stands in for the two search sites of the notes: wd= is Baidu's query
// parameter, q= is so.com's.
func searchPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Has("wd"):
		writePage(w, "百度一下 (local stand-in for Baidu)",
			"Host asked for: "+r.Host, "You searched for: "+q.Get("wd"))
	case q.Has("q"):
		writePage(w, "360搜索 (local stand-in for so.com)",
			"Host asked for: "+r.Host, "You searched for: "+q.Get("q"))
	default:
		http.Error(w, "GET /s needs wd= (as Baidu) or q= (as so.com)", http.StatusBadRequest)
	}
}

// writePage sends a small UTF-8 HTML page: a title and a few lines of text. Every
// page the server sends has this shape, so only its words differ.
func writePage(w http.ResponseWriter, title string, lines ...string) {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</title></head>\n<body>\n<h1>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</h1>\n")
	for _, line := range lines {
		b.WriteString("<p>" + html.EscapeString(line) + "</p>\n")
	}
	b.WriteString("<p>Served by the tutorial's local test server, not by the real site.</p>\n</body>\n</html>\n")

	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// A write error means the client went away; the record shows what was sent.
	_, _ = io.WriteString(w, b.String())
}
