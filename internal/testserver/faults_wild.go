package testserver

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// The faults in this file answer the way real servers out there do, legally or at least
// commonly, and the way a client that only knows "read until end of file" gets wrong:
// they keep the connection open, frame the body in chunks, end lines with a bare LF,
// send more than they promised, or are not HTTP servers at all. Each one is written by
// hand on the hijacked connection, because net/http would never send it.

// bannerText is what fault=banner sends: the greeting an SSH server sends to anyone
// who connects, as a client pointed at the wrong port would see.
const bannerText = "SSH-2.0-OpenSSH_9.6\r\n"

// endlessHeaderStart is what fault=endlessheader sends before its header line that
// never ends.
const endlessHeaderStart = "HTTP/1.1 200 OK\r\nX-Endless: "

// contentLengthHead is the status line and header of a 200 response with a body of
// size bytes of the pattern, in the given HTTP version, carrying the mark.
func contentLengthHead(version string, size int64) string {
	return version + " 200 OK\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: " + strconv.FormatInt(size, 10) + "\r\n" +
		markLine +
		"\r\n"
}

// writeHead sends a 200 status line and header written by hand, and notes in the
// record that a 200 went out.
func writeHead(conn net.Conn, x *exchange, head string) error {
	if _, err := io.WriteString(conn, head); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	x.status = http.StatusOK
	return nil
}

// stayOpen completes the record, because everything the fault will send has been
// sent, and then keeps the connection open until the client closes it or the server
// closes. The order matters: a careful client is done now, and may start its next
// request at once; the record must not count this one in flight beside it.
func stayOpen(conn net.Conn, x *exchange) error {
	x.finish()
	return waitForClientToLeave(conn)
}

// keepAlive answers as an HTTP/1.1 server that keeps connections open does, whatever
// the client asked for: HTTP/1.1, Content-Length, "Connection: keep-alive", and then
// the connection stays open. A client that reads until end of file waits for ever;
// one that counts Content-Length bytes is done when the body has arrived.
func keepAlive(s *Server, x *exchange, r *http.Request, o options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	head := "HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: " + strconv.FormatInt(o.size, 10) + "\r\n" +
		"Connection: keep-alive\r\n" +
		markLine +
		"\r\n"
	if err := writeHead(conn, x, head); err != nil {
		return fmt.Errorf("keepalive: %w", err)
	}
	if err := writeBody(r.Context(), x, o.size, bodyPiece, 0, nil); err != nil {
		return fmt.Errorf("keepalive: %w", err)
	}
	return stayOpen(conn, x)
}

// chunked sends size bytes of the pattern with "Transfer-Encoding: chunked" (RFC 9112
// §7.1): each chunk is its size in hex, CRLF, the bytes, CRLF; a chunk of size 0 ends
// the body. The first chunk carries a chunk extension (";ext=1"), which a client must
// skip, and the last one a trailer field (the body's SHA-256), which it may ignore.
// Each chunk leaves in a write of its own, pause apart, so the client sees pieces
// whose edges need not match its reads. Then the connection stays open, as for
// keepalive: only the zero-size chunk says the body is over.
//
// The record counts the payload only, not the framing around it.
func chunked(s *Server, x *exchange, r *http.Request, o options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	head := "HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Transfer-Encoding: chunked\r\n" +
		"Trailer: X-Body-SHA256\r\n" + // announces the trailer field, as RFC 9110 §6.6.2 asks
		"Connection: keep-alive\r\n" +
		markLine +
		"\r\n"
	if err := writeHead(conn, x, head); err != nil {
		return fmt.Errorf("chunked: %w", err)
	}

	src := &pattern{}
	data := make([]byte, min(int64(o.chunk), o.size))
	var frame []byte // one chunk with its framing, reused
	for sent := int64(0); sent < o.size; {
		if sent > 0 {
			if err := sleep(r.Context(), o.pause); err != nil {
				return fmt.Errorf("chunked: body after %d bytes: %w", sent, err)
			}
		}
		n := min(int64(len(data)), o.size-sent)
		src.Read(data[:n]) // a pattern fills the whole buffer and never fails
		extension := ""
		if sent == 0 {
			extension = ";ext=1"
		}
		frame = fmt.Appendf(frame[:0], "%x%s\r\n", n, extension)
		frame = append(frame, data[:n]...)
		frame = append(frame, "\r\n"...)
		if _, err := conn.Write(frame); err != nil {
			return fmt.Errorf("chunked: body after %d bytes: %w", sent, err)
		}
		x.count(data[:n])
		sent += n
	}

	// The last chunk has size 0; the trailer section after it ends with a blank line.
	last := "0\r\nX-Body-SHA256: " + hex.EncodeToString(x.sum.Sum(nil)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, last); err != nil {
		return fmt.Errorf("chunked: last chunk: %w", err)
	}
	return stayOpen(conn, x)
}

// bareLF sends a valid HTTP/1.0 response whose status line and header lines end in a
// bare "\n" instead of "\r\n", as some old or home-made servers do (RFC 9112 §2.2 lets
// a recipient accept it), with Content-Length, then closes. A client that looks for
// "\r\n\r\n" alone never finds the end of the header.
func bareLF(s *Server, x *exchange, _ *http.Request, o options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	body := "bare LF line endings for req=" + o.id + "\n"
	head := "HTTP/1.0 200 OK\n" +
		"Content-Type: text/plain; charset=utf-8\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\n" +
		MarkHeader + ": " + MarkValue + "\n" +
		"\n"
	if err := writeHead(conn, x, head); err != nil {
		return fmt.Errorf("barelf: %w", err)
	}
	if _, err := io.WriteString(x, body); err != nil {
		return fmt.Errorf("barelf: body: %w", err)
	}
	return nil
}

// banner answers as an SSH server on the wrong port would: its greeting, at once, and
// then silence with the connection open. A careful client fails at once because the
// answer does not start with "HTTP/"; one that waits for end of file waits for ever.
// The record shows no status and no body: nothing HTTP was sent.
func banner(s *Server, x *exchange, _ *http.Request, _ options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	if _, err := io.WriteString(conn, bannerText); err != nil {
		return fmt.Errorf("banner: %w", err)
	}
	return stayOpen(conn, x)
}

// endlessHeader sends a status line and then one header line that never ends, until
// the client goes away or the server closes: no blank line ever comes, so a client
// that keeps the header in memory until it is complete must stop at a size limit of
// its own. The record shows status 0: a header that never ends is no response.
func endlessHeader(s *Server, x *exchange, _ *http.Request, _ options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	if _, err := io.WriteString(conn, endlessHeaderStart); err != nil {
		return fmt.Errorf("endlessheader: %w", err)
	}
	piece := bytes.Repeat([]byte("a"), bodyPiece)
	for written := int64(len(endlessHeaderStart)); ; written += int64(len(piece)) {
		// Ends when the client closes (EPIPE or ECONNRESET) or Close closes conn.
		if _, err := conn.Write(piece); err != nil {
			return fmt.Errorf("endlessheader: after %d bytes: %w", written, err)
		}
	}
}

// resetAfter sends a whole response with Content-Length and then closes with SO_LINGER
// 0, a TCP reset, without waiting for the client to close first, as a server that is
// quick to free its connections may. A client that stops reading when Content-Length
// bytes arrived has a complete response; one that reads on for end of file gets
// ECONNRESET instead.
//
// The reset throws away whatever the kernel has not sent yet, so it waits until the
// client's kernel has acknowledged every byte (see waitUntilAcknowledged).
func resetAfter(s *Server, x *exchange, r *http.Request, o options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	if err := writeHead(conn, x, contentLengthHead("HTTP/1.0", o.size)); err != nil {
		return fmt.Errorf("resetafter: %w", err)
	}
	if err := writeBody(r.Context(), x, o.size, bodyPiece, 0, nil); err != nil {
		return fmt.Errorf("resetafter: %w", err)
	}
	if err := waitUntilAcknowledged(r.Context(), conn); err != nil {
		return fmt.Errorf("resetafter: %w", err)
	}
	return lingerZero(conn) // the deferred close now sends RST
}

// overlong sends a response whose body is twice as long as its Content-Length says,
// then closes. A client that reads until end of file keeps bytes that are not the
// body; a careful one sees the extra bytes arrive with the body and says so, or, if
// they come after it has stopped reading, never sees them. For sizes up to
// bodyPiece the whole answer goes out in one write, so that on loopback it arrives
// as one piece and the client always sees the extra bytes: the outcome does not
// depend on timing. The record counts the size bytes a correct body has.
func overlong(s *Server, x *exchange, r *http.Request, o options) error {
	conn, err := s.hijack(x)
	if err != nil {
		return err
	}
	defer s.closeHijacked(x, conn)

	if o.size > bodyPiece {
		return overlongInPieces(conn, x, r, o)
	}
	answer := []byte(contentLengthHead("HTTP/1.0", o.size))
	body := make([]byte, 2*o.size)
	(&pattern{}).Read(body) // a pattern fills the whole buffer and never fails
	x.status, x.bytes = http.StatusOK, o.size
	x.sum.Write(body[:o.size]) // the record's body: what Content-Length promised
	if _, err := conn.Write(append(answer, body...)); err != nil {
		return fmt.Errorf("overlong: %w", err)
	}
	return nil
}

// overlongInPieces is overlong for a large size: the head, the promised body, and
// as much again past its end, each written as it is made.
func overlongInPieces(conn net.Conn, x *exchange, r *http.Request, o options) error {
	if err := writeHead(conn, x, contentLengthHead("HTTP/1.0", o.size)); err != nil {
		return fmt.Errorf("overlong: %w", err)
	}
	src := &pattern{}
	if err := writePattern(r.Context(), x, src, o.size, bodyPiece, 0, nil); err != nil {
		return fmt.Errorf("overlong: %w", err)
	}
	// The pattern goes on past the promised end, straight to the connection, so the
	// record does not count it.
	if err := writePattern(r.Context(), conn, src, o.size, bodyPiece, 0, nil); err != nil {
		return fmt.Errorf("overlong: past Content-Length: %w", err)
	}
	return nil
}
