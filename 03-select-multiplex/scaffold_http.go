//go:build unix

// scaffold_http.go is the part of the scaffold that reads HTTP responses, as
// a careful HTTP/1.0 client does (RFC 9112, section 6.3): a response is
// complete at end of file, or as soon as its framing says so. The same in
// every stage, like scaffold.go.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"blocking-to-epoll/internal/testserver"
)

// received keeps the bytes a read returned and says whether the response is
// now complete. A stage calls it after every read that returned bytes, and
// stops reading once it says so: the response's framing says it is whole
// (Content-Length bytes of body, the last chunk of a chunked body), as from
// a server that keeps the connection open. Otherwise end of file ends the
// response (see finish). An error says why it cannot be a good response: it
// is not HTTP, its framing is broken, or it grew past -max-bytes.
func (r *request) received(data []byte) (complete bool, err error) {
	if limit := r.rn.cfg.maxBytes; limit > 0 && len(r.response)+len(data) > limit {
		return false, fmt.Errorf("the response is larger than -max-bytes (%d bytes): stopped reading it", limit)
	}
	r.response = append(r.response, data...)
	return r.parse.more(r.response)
}

// framing follows one response as its bytes arrive: where its header ends,
// what the header says about the body, and how much of the body has come.
// It looks at each byte once, however many pieces the response comes in.
type framing struct {
	scanned   int    // the header has been read up to here: the start of its unfinished line
	bodyStart int    // where the body starts; 0 while the header has not ended
	status    int    // from the status line
	length    int    // Content-Length; -1 when there is none
	chunked   bool   // the last transfer coding is chunked: the body comes in sized chunks
	untilEOF  bool   // another transfer coding: the body ends at end of file, whatever Content-Length says
	marked    bool   // the header says the project's test server sent it
	body      []byte // the payload: for a chunked body, the chunks' bytes without their framing
	complete  bool   // the framing says the response has ended
	end       int    // where it ended, once complete

	chunkAt   int  // chunked: how far the body has been decoded
	chunkLeft int  // chunked: bytes of this chunk still to come; -1 when its line end comes next
	trailer   bool // chunked: the last chunk has come; trailer lines follow, then an empty line
}

// more looks at every byte that has arrived (raw) and says whether the
// response is complete, or what is wrong with it.
func (f *framing) more(raw []byte) (complete bool, err error) {
	if f.bodyStart == 0 {
		if err := f.readHeader(raw); err != nil || f.bodyStart == 0 {
			return false, err // broken, or the header has not ended yet
		}
	}
	switch {
	case f.status < 200 || f.status == 204 || f.status == 304: // no body: over at the header's end
		f.complete, f.end = true, f.bodyStart
	case f.chunked:
		if err := f.readChunks(raw); err != nil {
			return false, err
		}
	case f.length >= 0 && !f.untilEOF:
		f.body = raw[f.bodyStart:min(len(raw), f.bodyStart+f.length)]
		f.complete, f.end = len(f.body) == f.length, f.bodyStart+f.length
	default:
		f.body = raw[f.bodyStart:] // no framing: the body ends at end of file
	}
	if f.complete && len(raw) > f.end {
		return false, fmt.Errorf("the server sent %d bytes more than the response it framed", len(raw)-f.end)
	}
	return f.complete, nil
}

// atEnd says whether what arrived is a whole response, once the stage has
// stopped reading without an error: at end of file, or because more said so.
func (f *framing) atEnd(raw []byte) error {
	switch {
	case f.complete:
		return nil
	case len(raw) == 0:
		return errors.New("the server closed the connection without sending anything")
	case f.bodyStart == 0:
		return fmt.Errorf("the response ended inside its header (%d bytes, no blank line)", len(raw))
	case f.chunked:
		return fmt.Errorf("the response was cut short: its chunked body ended before the last chunk (%d bytes of payload arrived)", len(f.body))
	case f.length >= 0 && !f.untilEOF:
		return fmt.Errorf("the response was cut short: Content-Length says %d bytes, %d arrived", f.length, len(f.body))
	}
	f.complete = true // no framing: end of file is the end of the body
	return nil
}

// readHeader reads the header lines that have arrived whole: the status line
// first, then fields, up to an empty line. A line ends in CRLF or, as RFC
// 9112 lets a recipient accept, in a bare LF.
func (f *framing) readHeader(raw []byte) error {
	if !couldBeStatusLine(raw) {
		return fmt.Errorf("the server's answer is not HTTP: it starts with %q", raw[:min(len(raw), 24)])
	}
	for {
		lineEnd := bytes.IndexByte(raw[f.scanned:], '\n')
		if lineEnd < 0 {
			return nil // the rest of this line has not arrived yet
		}
		// The line stays bytes: a string of each would be copied for nothing.
		line := bytes.TrimSuffix(raw[f.scanned:f.scanned+lineEnd], []byte("\r"))
		first := f.scanned == 0
		f.scanned += lineEnd + 1
		switch {
		case first:
			f.status, _ = strconv.Atoi(string(line[9:12])) // couldBeStatusLine checked the three digits
			f.length = -1
		case len(line) == 0:
			f.bodyStart, f.chunkAt = f.scanned, f.scanned
			return nil
		case line[0] == ' ' || line[0] == '\t':
			// an obsolete continuation of the previous field's value
		default:
			if err := f.headerField(line); err != nil {
				return err
			}
		}
	}
}

// couldBeStatusLine tells whether raw can start a status line such as
// "HTTP/1.1 200 OK": it checks what has arrived of the first 13 bytes, so that
// bytes that are not HTTP fail at once, not at end of file.
func couldBeStatusLine(raw []byte) bool {
	const shape = "HTTP/9.9 999 " // 9: a digit
	for i, c := range raw[:min(len(raw), len(shape))] {
		digit := '0' <= c && c <= '9' && (i != 9 || c != '0') // a status code starts with 1-9
		endsEarly := i == 12 && (c == '\r' || c == '\n')      // no reason phrase
		if shape[i] == '9' && !digit || shape[i] != '9' && c != shape[i] && !endsEarly {
			return false
		}
	}
	return true
}

// headerField reads one "Name: value" line, for the fields that frame the
// body, and the test server's mark.
func (f *framing) headerField(line []byte) error {
	name, value, found := bytes.Cut(line, []byte(":"))
	if !found {
		return fmt.Errorf("the response's header has a line that is not a field: %q", line[:min(len(line), 40)])
	}
	value = bytes.TrimSpace(value)
	switch {
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		codings := bytes.Split(value, []byte(","))
		f.chunked = bytes.EqualFold(bytes.TrimSpace(codings[len(codings)-1]), []byte("chunked"))
		f.untilEOF = !f.chunked
	case bytes.EqualFold(name, []byte("Content-Length")):
		for _, v := range bytes.Split(value, []byte(",")) { // "5, 5" is allowed: the same length twice
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil || n < 0 {
				return fmt.Errorf("the response's Content-Length %q is not a length", value)
			}
			if f.length >= 0 && n != f.length {
				return fmt.Errorf("the response gives two different Content-Lengths (%d and %d)", f.length, n)
			}
			f.length = n
		}
	case bytes.EqualFold(name, []byte(testserver.MarkHeader)):
		f.marked = string(value) == testserver.MarkValue
	}
	return nil
}

// readChunks decodes what has arrived of a chunked body: each chunk is its
// size in hex on a line (perhaps with ";extensions"), that many bytes and a
// line end; the chunk of size 0 is the last, followed by trailer fields and
// an empty line. Only the chunks' bytes are the body.
func (f *framing) readChunks(raw []byte) error {
	for !f.complete {
		if f.chunkLeft > 0 { // inside a chunk's bytes
			take := min(f.chunkLeft, len(raw)-f.chunkAt)
			if take == 0 {
				return nil
			}
			f.body = append(f.body, raw[f.chunkAt:f.chunkAt+take]...)
			f.chunkAt += take
			if f.chunkLeft -= take; f.chunkLeft == 0 {
				f.chunkLeft = -1 // the chunk's line end comes next
			}
			continue
		}
		lineEnd := bytes.IndexByte(raw[f.chunkAt:], '\n')
		if lineEnd < 0 {
			return nil // the line has not arrived whole yet
		}
		line := string(bytes.TrimSuffix(raw[f.chunkAt:f.chunkAt+lineEnd], []byte("\r")))
		f.chunkAt += lineEnd + 1
		switch {
		case f.chunkLeft == -1 && line != "":
			return errors.New("the response's chunked body is broken: a chunk is longer than its size says")
		case f.chunkLeft == -1:
			f.chunkLeft = 0
		case f.trailer:
			f.complete, f.end = line == "", f.chunkAt // trailer fields are skipped
		default:
			size, _, _ := strings.Cut(line, ";")
			n, err := strconv.ParseUint(strings.TrimSpace(size), 16, 31)
			if err != nil {
				return fmt.Errorf("the response's chunked body is broken: %q is not a chunk size", line[:min(len(line), 40)])
			}
			f.chunkLeft, f.trailer = int(n), n == 0
		}
	}
	return nil
}
