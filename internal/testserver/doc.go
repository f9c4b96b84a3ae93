// Package testserver is the tutorial's tiny local HTTP server: the one thing every
// stage fetches from, so that nobody needs the internet to follow the course.
//
// It stands in for the notes' two search sites and records what it sees, so a stage
// (or its tests) can ask the server how many requests it was handling at once instead
// of guessing from the client's clock.
//
// # Starting it
//
// A stage calls [Start] with "127.0.0.1:0" (or "[::1]:0" for IPv6) and fetches from
// [Server.Addr]. For very large runs start it standalone (make server, see
// cmd/testserver) so the client process holds only its own ends of the connections;
// the stage then reads the record with [FetchStats], which is bounded in time (a
// deadline) and in size (64 KiB) whatever the server at that address does.
//
// # The mark
//
// Every HTTP response the server sends carries the header line
//
//	X-Test-Server: blocking-to-epoll
//
// ([MarkHeader], [MarkValue]): pages, 400, 404 and 503 errors, /stats, /stats/timeline,
// and every fault that sends an HTTP header, whether net/http writes it or the fault
// does by hand. A client that finds it knows it is talking to this server, and only
// then asks it for /stats: any other server is never sent a request the user did not
// ask for. The faults that send no HTTP header (close, reset, garbage, silent, banner,
// endlessheader) carry none. Neither do the few answers net/http writes on its own
// before any handler runs (400 for a request it cannot parse, 431 for headers too large).
//
// # Routes
//
//	GET /s?wd=hello           the notes' Baidu search (Host www.baidu.com): a small HTML page
//	GET /s?q=hello            the notes' so.com search (Host www.so.com): the same page shape
//	GET /page                 the generic endpoint: a small page naming the req ID
//	GET /stats?run=TAG        the record of one run as JSON (a [Stats]); not recorded itself
//	GET /stats?run=TAG&entries=none  the same without the entries: a few hundred bytes however large the run
//	GET /stats/timeline?run=TAG  the same record drawn by [DrawTimeline]; not recorded itself
//	anything else             404, recorded like every other request
//
// # Query parameters (every recorded route)
//
//	run=TAG     groups the requests of one client run; Stats(TAG) reports them
//	req=ID      names the request in the record and the timeline
//	gather=N    first wait until N requests of this run have arrived (at most 10s):
//	            a client with N requests open at once then shows a peak of exactly N
//	delay=D     wait D (a Go duration such as 200ms, at most 60s) before answering
//	fault=NAME  misbehave on purpose instead of answering normally (see below)
//	size=N      body size in bytes for drip, large, truncate, stall, keepalive, chunked,
//	            resetafter and overlong (at most 64 MiB)
//	chunk=N     bytes per drip piece (default 256) or per chunk of chunked (default 1000), 1 to 1 MiB
//	pause=D     drip: pause between pieces (default 20ms); chunked: between chunks (default 5ms);
//	            slowheader: pause before each header line (default 50ms); at most 1s
//
// A value that is malformed or over its cap gets 400 with a plain-text reason.
//
// # Faults
//
//	drip        size bytes (default 4096) sent chunk bytes at a time, pause between pieces
//	large       a body of size bytes (default 1 MiB)
//	truncate    headers say size bytes (default 4096), only half arrive, then close
//	close       close the connection without writing anything
//	reset       close with SO_LINGER 0, so the client's read fails with ECONNRESET
//	garbage     a few hundred bytes that are not HTTP, then close
//	slowheader  a valid HTTP/1.0 response whose status and header lines arrive pause apart
//	endless     a body that never ends (no Content-Length), until the client hangs up
//	silent      read the request, never answer, keep the connection open until the client hangs up
//	stall       as truncate, but then keep the connection open, silent, until the client hangs up
//
// These answer the way real servers do, legally or at least commonly, and catch a
// client that only knows "read until end of file":
//
//	keepalive      HTTP/1.1 200 with Content-Length size (default 4096) and Connection: keep-alive,
//	               whatever the client asked for; then the connection stays open until the
//	               client hangs up. A client must stop after Content-Length bytes.
//	chunked        HTTP/1.1 200 with Transfer-Encoding: chunked: size bytes (default 4096) in
//	               chunks of chunk bytes (default 1000, hex sizes such as 3e8), pause apart, the
//	               first with a chunk extension (;ext=1), the last (size 0) with a trailer
//	               field X-Body-SHA256; then the connection stays open as for keepalive
//	barelf         a valid HTTP/1.0 response whose status and header lines end in a bare "\n"
//	               (RFC 9112 §2.2 lets a client accept that), with Content-Length, then close
//	banner         "SSH-2.0-OpenSSH_9.6\r\n" at once, as an SSH server on the wrong port would,
//	               then silence with the connection open until the client hangs up
//	endlessheader  "HTTP/1.1 200 OK\r\n" and then one header line (X-Endless: aaaa…) that never
//	               ends, until the client hangs up: a client must bound its header size
//	resetafter     a whole HTTP/1.0 response with Content-Length size (default 4096), then a TCP
//	               reset (SO_LINGER 0) once the client's kernel has acknowledged every byte,
//	               without waiting for the client to close
//	overlong       Content-Length size (default 4096), then twice as many bytes, then close
//
// # Two listeners that are not HTTP servers
//
// Some failures come before HTTP starts, so no fault of the server can show them.
// [BlackHole] listens but never completes a TCP handshake (a connect waits, as behind a
// firewall that drops packets), and [Deaf] accepts connections and never reads them (a
// large request fills its 64 KiB receive buffer and then the client's send buffer).
// Each takes "tcp4" or "tcp6" and listens on a free loopback port.
//
// # The record
//
// Each recorded request becomes an [Entry] when its handler starts and is completed when
// the handler finishes. The in-flight counter goes down before net/http sends the rest of
// the response and closes the connection (and, for faults that take the connection over,
// right before it is closed), so a strictly sequential client that reads each response
// to EOF never sees a peak above 1. Keepalive, chunked and banner complete their entry
// as soon as their last byte is written, before they wait for the client to hang up: a
// careful client is done then and may start its next request at once.
//
// An entry's Status is the status line sent (0 for close, reset, garbage, banner and
// endlessheader, which send no whole HTTP header), and BodyBytes and BodySHA256 describe
// the payload a correct client keeps: the decoded body for chunked, the first
// Content-Length bytes for overlong, half of size for truncate and stall.
package testserver
