//go:build unix

package main

// summary.go is what measure reads from the stages: the JSON object a stage
// prints with -json. measure decodes it into types of its own, never a
// stage's, since a stage is a program and not a package to import.

import (
	"encoding/json"
	"slices"
)

// summary is the part of a stage's -json output that measure uses (the
// scaffold's summary has these fields and more). It keeps the bytes it was
// read from, and writes them back unchanged, so a summary passes through
// whole, as the stage printed it, even fields added to the scaffold after
// this was written. The comparison trims each run's (trim, below).
type summary struct {
	Stage               string         `json:"stage"`
	Server              string         `json:"server"`
	Requests            int            `json:"requests"`
	OK                  int            `json:"ok"`
	Failed              int            `json:"failed"`
	WallMS              float64        `json:"wall_ms"`
	CPUMS               float64        `json:"cpu_ms"`
	MaxRSSKB            int64          `json:"max_rss_kb"`
	Syscalls            map[string]int `json:"syscalls"`
	Wasted              int            `json:"wasted_calls"`
	AchievedConcurrency float64        `json:"achieved_concurrency"`
	PeakInFlight        *int           `json:"peak_in_flight"`          // null when the server does not report it
	ServerCPUMS         *float64       `json:"server_cpu_ms,omitempty"` // measured here: the test server's CPU time during the run
	Results             []result       `json:"results"`

	printed json.RawMessage // the JSON it was read from; nil when made here
}

// result is one request of a summary, the part measure uses.
type result struct {
	ID      int     `json:"id"`
	StartMS float64 `json:"start_ms"`
	EndMS   float64 `json:"end_ms"`
	Error   string  `json:"error,omitempty"`
}

// fields has summary's fields without its methods, to decode and encode
// them the standard way.
type fields summary

func (s *summary) UnmarshalJSON(data []byte) error {
	if err := json.Unmarshal(data, (*fields)(s)); err != nil {
		return err
	}
	s.printed = append(json.RawMessage(nil), data...)
	return nil
}

func (s summary) MarshalJSON() ([]byte, error) {
	if s.printed != nil {
		return s.printed, nil
	}
	return json.Marshal(fields(s))
}

// trim lets go of what the comparison does not need once a run is over:
// the bytes it was read from and the requests that succeeded (the failed
// ones stay: they say where a model met its limit), so that measure does
// not grow with every run it keeps. (The programs measured do not inherit
// measure's memory either way: the spawner starts them, spawner.go.)
func (s *summary) trim() {
	if s == nil {
		return
	}
	s.printed = nil
	failed := s.Results[:0]
	for _, r := range s.Results {
		if r.Error != "" {
			failed = append(failed, r)
		}
	}
	s.Results = slices.Clip(failed)
}
