package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A fault answers a request in one of the broken ways a client must survive.
// Its error only says how far it got before the client went away or the server closed.
type fault func(s *Server, x *exchange, r *http.Request, o options) error

// faults maps each fault= name to the function that misbehaves that way.
var faults = map[string]fault{
	"drip":       drip,
	"large":      large,
	"truncate":   truncate,
	"close":      closeConn,
	"reset":      reset,
	"garbage":    garbage,
	"slowheader": slowHeader,
	"endless":    endless,
	"silent":     silent,
	"stall":      stall,
	// The ones below answer in ways that are legal or common in the wild but that a
	// client which only knows "read until end of file" gets wrong.
	"keepalive":     keepAlive,
	"chunked":       chunked,
	"barelf":        bareLF,
	"banner":        banner,
	"endlessheader": endlessHeader,
	"resetafter":    resetAfter,
	"overlong":      overlong,
}

// bodyPiece is how much of a large body is made and written at a time.
const bodyPiece = 32 << 10

// garbageText is what fault=garbage sends instead of a response. It does not start
// with "HTTP/", so a client that checks the status line can tell at once.
var garbageText = strings.Repeat("#!? this is not HTTP: the test server sends garbage on purpose (fault=garbage)\n", 4)

// drip sends size bytes chunk bytes at a time with a pause between pieces,
// flushing each piece so the client really receives it in pieces.
func drip(_ *Server, x *exchange, r *http.Request, o options) error {
	x.Header().Set("Content-Type", "text/plain; charset=utf-8")
	x.Header().Set("Content-Length", strconv.FormatInt(o.size, 10))
	x.WriteHeader(http.StatusOK)
	flush := http.NewResponseController(x.ResponseWriter).Flush
	return writeBody(r.Context(), x, o.size, o.chunk, o.pause, flush)
}

// large sends a body of size bytes as fast as the client takes it.
func large(_ *Server, x *exchange, r *http.Request, o options) error {
	x.Header().Set("Content-Type", "text/plain; charset=utf-8")
	x.Header().Set("Content-Length", strconv.FormatInt(o.size, 10))
	x.WriteHeader(http.StatusOK)
	return writeBody(r.Context(), x, o.size, bodyPiece, 0, nil)
}

// endless streams a body that never ends, with no Content-Length, until the
// client goes away or the server closes: a client must cap what it keeps.
func endless(_ *Server, x *exchange, r *http.Request, _ options) error {
	x.Header().Set("Content-Type", "text/plain; charset=utf-8")
	x.WriteHeader(http.StatusOK)
	return writeBody(r.Context(), x, math.MaxInt64, bodyPiece, 0, nil)
}

// truncate promises size bytes in Content-Length but sends only half of them before
// closing, as a server that crashed mid-response would.
func truncate(s *Server, x *exchange, r *http.Request, o options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)
	return sendHalf(conn, x, r, o)
}

// stall sends half of a response, as truncate does, and then nothing more: the
// connection stays open until the client gives up or the server closes. Only a
// client's own deadline ends such a request.
func stall(s *Server, x *exchange, r *http.Request, o options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)
	if err := sendHalf(conn, x, r, o); err != nil {
		return err
	}
	return waitForClientToLeave(conn)
}

// silent reads the request and never answers: the connection stays open until
// the client gives up or the server closes.
func silent(s *Server, x *exchange, _ *http.Request, _ options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)
	return waitForClientToLeave(conn)
}

// sendHalf writes a header that promises size bytes, and half of them. It is written
// by hand because net/http refuses to send fewer bytes than its Content-Length.
func sendHalf(conn net.Conn, x *exchange, r *http.Request, o options) error {
	if err := writeHead(conn, x, contentLengthHead("HTTP/1.0", o.size)); err != nil {
		return err
	}
	return writeBody(r.Context(), x, o.size/2, bodyPiece, 0, nil)
}

// waitForClientToLeave reads, and throws away, whatever the client sends, until it
// closes its end (end of file) or the server's Close closes the connection.
func waitForClientToLeave(conn net.Conn) error {
	_, err := io.Copy(io.Discard, conn)
	return err
}

// closeConn closes the connection without a word: the client reads EOF at once.
func closeConn(s *Server, x *exchange, _ *http.Request, _ options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	s.closeHijacked(x, conn)
	return nil
}

// reset closes the connection with SO_LINGER set to 0, which makes the kernel send
// RST instead of FIN: the client's next read fails with ECONNRESET.
func reset(s *Server, x *exchange, _ *http.Request, _ options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	return lingerZero(conn)
}

// lingerZero sets SO_LINGER to 0 on conn, so that closing it sends RST, not FIN.
func lingerZero(conn net.Conn) error {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return errors.New("reset: the connection is not TCP")
	}
	if err := tcp.SetLinger(0); err != nil {
		return fmt.Errorf("reset: set SO_LINGER: %w", err)
	}
	return nil
}

// garbage answers with bytes that are not HTTP at all, then closes.
func garbage(s *Server, x *exchange, _ *http.Request, _ options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	if _, err := io.WriteString(conn, garbageText); err != nil {
		return fmt.Errorf("garbage: %w", err)
	}
	return nil
}

// slowHeader sends a valid HTTP/1.0 response by hand, waiting pause before the status
// line and before each header line, so a client sees the header arrive in pieces.
func slowHeader(s *Server, x *exchange, r *http.Request, o options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	body := "slow header done for req=" + o.id + "\n"
	lines := []string{
		"HTTP/1.0 200 OK\r\n",
		"Content-Type: text/plain; charset=utf-8\r\n",
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n",
		markLine,
	}
	for _, line := range lines {
		if err := sleep(r.Context(), o.pause); err != nil {
			return fmt.Errorf("slowheader: %w", err)
		}
		if _, err := io.WriteString(conn, line); err != nil {
			return fmt.Errorf("slowheader: %w", err)
		}
		x.status = http.StatusOK // from the first line on, a status has been sent
	}
	if _, err := io.WriteString(conn, "\r\n"); err != nil {
		return fmt.Errorf("slowheader: %w", err)
	}
	if _, err := io.WriteString(x, body); err != nil {
		return fmt.Errorf("slowheader: body: %w", err)
	}
	return nil
}

// writeBody writes size bytes of the body pattern to w in pieces of piece bytes,
// waiting pause between pieces and calling flush (when not nil) after each one, so the
// piece leaves now instead of when a buffer fills. Only one piece is in memory at a time.
func writeBody(ctx context.Context, w io.Writer, size int64, piece int, pause time.Duration, flush func() error) error {
	return writePattern(ctx, w, &pattern{}, size, piece, pause, flush)
}

// writePattern is writeBody reading from src, so that a second call can go on where
// the first one stopped (fault=overlong).
func writePattern(ctx context.Context, w io.Writer, src *pattern, size int64, piece int, pause time.Duration, flush func() error) error {
	buf := make([]byte, min(int64(piece), size))
	for written := int64(0); written < size; {
		if written > 0 {
			if err := sleep(ctx, pause); err != nil {
				return fmt.Errorf("body after %d bytes: %w", written, err)
			}
		}
		n := min(int64(len(buf)), size-written)
		src.Read(buf[:n]) // a pattern fills the whole buffer and never fails
		if _, err := w.Write(buf[:n]); err != nil {
			return fmt.Errorf("body after %d bytes: %w", written, err)
		}
		written += n
		if flush != nil {
			if err := flush(); err != nil {
				return fmt.Errorf("flush body after %d bytes: %w", written, err)
			}
		}
	}
	return nil
}

// patternLineLen is the length of one line of the body pattern, newline included.
const patternLineLen = 32

// pattern is an endless io.Reader of numbered lines, "line 00000001 .................\n",
// so a body of any size is made on the fly, is the same on every run, and anyone who
// prints a piece of it can tell where in the body it came from.
type pattern struct {
	offset int64 // bytes read so far
}

// Read fills all of b and never fails.
func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		line := fmt.Sprintf("line %08d .................\n", p.offset/patternLineLen)
		copied := copy(b[n:], line[p.offset%patternLineLen:])
		n += copied
		p.offset += int64(copied)
	}
	return n, nil
}
