// Command nethttp is one row of the comparison (make compare), not a stage:
// what most Go programs would do to fetch n pages at once. One goroutine per
// request, each calling net/http's Client with the default transport, keep-
// alives off, so that every request has a connection of its own, as the
// stages' do. measure builds it beside the stages and runs it as
//
//	nethttp -addr HOST:PORT -n N -delay D -run TAG
//
// It asks for the same pages as the stages (whatToAsk in the stages'
// scaffold.go), with the same query, so the test server records the run
// under TAG and measure can ask it for the peak in flight. net/http speaks
// HTTP/1.1 (with Connection: close, keep-alives being off), where the stages
// write HTTP/1.0: the test server answers both alike.
//
// It prints one JSON object, the part of a stage's -json summary it knows:
// ok, failed, wall_ms and each request's start, end and error. measure takes
// the CPU time and peak memory from the process's rusage when it exits, and
// the peak in flight from the test server.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// result is one request, named as in a stage's -json summary.
type result struct {
	ID      int     `json:"id"`
	StartMS float64 `json:"start_ms"`
	EndMS   float64 `json:"end_ms"`
	Error   string  `json:"error,omitempty"`
}

type summary struct {
	Requests int      `json:"requests"`
	OK       int      `json:"ok"`
	Failed   int      `json:"failed"`
	WallMS   float64  `json:"wall_ms"`
	Results  []result `json:"results"`
}

func main() {
	addr := flag.String("addr", "", "the test server's host:port")
	n := flag.Int("n", 5, "number of requests, all at once")
	delay := flag.Duration("delay", 200*time.Millisecond, "how long the test server waits before answering each")
	tag := flag.String("run", "nethttp", "run=TAG in every request, so the test server can tell this run apart")
	flag.Parse()
	if *addr == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "nethttp: -addr HOST:PORT and -n of 1 or more are needed")
		os.Exit(2)
	}

	// The default transport, as most programs use it, with keep-alives off:
	// otherwise a connection would wait in the idle pool after its response,
	// which none of the stages does.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	client := &http.Client{Transport: transport}

	s := summary{Requests: *n, Results: make([]result, *n)}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Results[i] = fetch(client, start, i+1, *addr, *tag, *delay)
		}()
	}
	wg.Wait()
	s.WallMS = ms(time.Since(start))
	for _, r := range s.Results {
		if r.Error == "" {
			s.OK++
		}
	}
	s.Failed = s.Requests - s.OK
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		os.Exit(2)
	}
	if s.Failed > 0 {
		os.Exit(1) // as the stages do: some requests failed, and the summary says which
	}
}

// fetch makes request id and reads its response to the end.
func fetch(client *http.Client, start time.Time, id int, addr, tag string, delay time.Duration) (r result) {
	r = result{ID: id, StartMS: ms(time.Since(start))}
	defer func() { r.EndMS = ms(time.Since(start)) }() // whichever way it returns
	host, path := whatToAsk(id, addr)
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, err := http.NewRequest("GET", fmt.Sprintf("http://%s%s%srun=%s&req=%d&delay=%v", addr, path, sep, tag, id, delay), nil)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	req.Host = host // the notes' two searches name their sites; the connection still goes to addr
	resp, err := client.Do(req)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		r.Error = "reading the body: " + err.Error()
	} else if resp.StatusCode != http.StatusOK {
		r.Error = resp.Status
	}
	return r
}

// whatToAsk is the stages' choice of page (their scaffold.go): the notes'
// two searches first, then the test server's generic page.
func whatToAsk(id int, addr string) (host, path string) {
	switch id {
	case 1:
		return "www.baidu.com", "/s?wd=hello"
	case 2:
		return "www.so.com", "/s?q=hello"
	}
	return addr, "/page"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
