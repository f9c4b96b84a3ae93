package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// MarkHeader and MarkValue make up the header line "X-Test-Server: blocking-to-epoll"
// that every HTTP response of this server carries, whether net/http writes it or a
// fault writes it by hand. A client that finds it knows it is talking to the project's
// test server, so it may ask for /stats; any other server is never sent a request the
// user did not ask for.
const (
	MarkHeader = "X-Test-Server"
	MarkValue  = "blocking-to-epoll"
)

// markLine is the mark as a header line, for the responses the faults write by hand.
const markLine = MarkHeader + ": " + MarkValue + "\r\n"

// readHeaderTimeout is how long a client may take to send its request headers. It
// frees the connections of clients that connect and then say nothing. There is no
// write timeout on purpose: it would cut off long drips.
const readHeaderTimeout = 10 * time.Second

// Server is a running test server. Create it with Start and stop it with Close.
type Server struct {
	listener   net.Listener
	httpServer *http.Server
	cancel     context.CancelFunc // ends every request context: delays, drips and slow headers stop waiting
	serveDone  chan struct{}      // closed when http.Serve has returned
	serveErr   error              // why http.Serve returned, if not because of Close; read after serveDone

	rec record

	mu       sync.Mutex
	closing  bool                  // set by Close: no new handler or hijacked connection is accepted
	hijacked map[net.Conn]struct{} // connections taken over by a fault; net/http no longer closes them

	handlers sync.WaitGroup // running handler calls
	conns    sync.WaitGroup // connections net/http is still serving

	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr, which must be a loopback IP and port such as "127.0.0.1:0"
// or "[::1]:0" (port 0 picks a free port), and serves in background goroutines until Close.
//
// net.Listen asks for the kernel's largest listen backlog (somaxconn), so thousands of
// clients can connect at once, and the Go runtime has already raised the process's
// open-file limit (RLIMIT_NOFILE) to its maximum.
func Start(addr string) (*Server, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start test server: %w", err)
	}

	// Every request context derives from ctx, so cancelling it in Close ends every wait.
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		listener:  ln,
		cancel:    cancel,
		serveDone: make(chan struct{}),
		hijacked:  make(map[net.Conn]struct{}),
	}
	s.rec.init()
	s.httpServer = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: readHeaderTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnState:         s.connState,
	}
	go s.serve()
	return s, nil
}

// checkLoopback refuses any address a machine on the network could reach: the
// server has fault modes and no authentication, so it must stay local.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("test server address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("test server address %q: the host must be a loopback IP such as 127.0.0.1", addr)
	}
	return nil
}

// serve runs http.Serve until Close stops it.
func (s *Server) serve() {
	defer close(s.serveDone)
	err := s.httpServer.Serve(s.listener)
	if !errors.Is(err, http.ErrServerClosed) {
		s.serveErr = fmt.Errorf("test server %s stopped serving: %w", s.Addr(), err)
	}
}

// StandaloneAddr is where the standalone server listens unless told otherwise
// (make server, cmd/testserver), and so the address the docs show for it.
const StandaloneAddr = "127.0.0.1:8000"

// Addr is the address the server listens on, such as "127.0.0.1:8000" or "[::1]:8000".
func (s *Server) Addr() string {
	return s.listener.Addr().String()
}

// Stats is the record of the requests tagged run=run; run "" gives every request.
func (s *Server) Stats(run string) Stats {
	return s.rec.stats(run, true)
}

// Close stops listening, closes every connection (including those a fault took over)
// and waits until every handler and connection goroutine is done, so nothing the
// server opened is left behind when it returns. Calling it again returns the same result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *Server) shutdown() error {
	s.mu.Lock()
	s.closing = true
	hijacked := make([]net.Conn, 0, len(s.hijacked))
	for conn := range s.hijacked {
		hijacked = append(hijacked, conn)
	}
	s.mu.Unlock()

	s.cancel()
	// http.Server.Close closes the listener, waits for Serve to return and closes
	// every connection net/http still owns; the hijacked ones are ours to close.
	err := s.httpServer.Close()
	for _, conn := range hijacked {
		conn.Close() // the fault's own Close may come first; a second Close is harmless
	}
	<-s.serveDone
	s.handlers.Wait()
	s.conns.Wait()

	if err != nil {
		return fmt.Errorf("close test server %s: %w", s.Addr(), err)
	}
	return s.serveErr
}

// connState counts the connections net/http serves, so Close can wait for their
// goroutines. Every connection ends either closed or hijacked, never both.
func (s *Server) connState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.conns.Done()
	}
}

// serveHTTP sends the stats endpoints to their handlers and records everything else.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// Set first, so that every answer net/http writes carries it: pages, errors
	// (http.Error keeps it), the stats and the faults that use the ResponseWriter.
	w.Header().Set(MarkHeader, MarkValue)
	if !s.handlerStarts() {
		http.Error(w, "test server is closing", http.StatusServiceUnavailable)
		return
	}
	defer s.handlers.Done()

	switch r.URL.Path {
	case "/stats":
		s.serveStats(w, r)
	case "/stats/timeline":
		s.serveTimeline(w, r)
	default:
		s.serveRecorded(w, r)
	}
}

// handlerStarts counts one more running handler, unless Close has begun: Close must
// not wait for handlers that start after it looked.
func (s *Server) handlerStarts() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.handlers.Add(1)
	return true
}

// hijack takes the connection away from net/http, so a fault can misbehave in ways a
// ResponseWriter cannot. Body bytes written to x afterwards go straight to the
// connection. The caller must end with closeHijacked.
func (s *Server) hijack(x *exchange) (net.Conn, error) {
	conn, _, err := http.NewResponseController(x.ResponseWriter).Hijack()
	if err != nil {
		return nil, fmt.Errorf("hijack connection: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		conn.Close()
		return nil, errors.New("hijack connection: test server is closing")
	}
	s.hijacked[conn] = struct{}{}
	x.out = conn
	return conn, nil
}

// closeHijacked completes the record and then closes a hijacked connection. The
// order matters: the client may act as soon as it sees the connection close.
func (s *Server) closeHijacked(x *exchange, conn net.Conn) {
	x.finish()
	s.mu.Lock()
	delete(s.hijacked, conn)
	s.mu.Unlock()
	conn.Close() // closing a socket we own only fails if it is already closed
}
