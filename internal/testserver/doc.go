// Package testserver is the tutorial's tiny local HTTP server: the one thing every
// stage fetches from, so that nobody needs the internet to follow the course.
//
// It stands in for the notes' two search sites and records what it sees, so a stage
// (or its tests) can ask the server how many requests it was handling at once instead
// of guessing from the client's clock.
//
// # Starting it
//
// A stage calls [Start] with "127.0.0.1:0" and fetches from [Server.Addr]. For very
// large runs start it standalone (make server, see cmd/testserver) so the client
// process holds only its own ends of the connections; the stage then reads the record
// with [FetchStats].
//
// # Routes
//
//	GET /s?wd=hello           the notes' Baidu search (Host www.baidu.com): a small HTML page
//	GET /s?q=hello            the notes' so.com search (Host www.so.com): the same page shape
//	GET /page                 the generic endpoint: a small page naming the req ID
//	GET /stats?run=TAG        the record of one run as JSON (a [Stats]); not recorded itself
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
//	size=N      body size in bytes for drip, large, truncate and stall (at most 64 MiB)
//	chunk=N     bytes per drip piece, 1 to 1 MiB (default 256)
//	pause=D     drip: pause between pieces (default 20ms);
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
// # The record
//
// Each recorded request becomes an [Entry] when its handler starts and is completed when
// the handler finishes. The in-flight counter goes down before net/http sends the rest of
// the response and closes the connection (and, for faults that take the connection over,
// right before it is closed), so a strictly sequential client that reads each response
// to EOF never sees a peak above 1.
package testserver
