//go:build unix

package main

// median.go turns a row's runs (-runs N) into the one line the table
// prints: each figure the median of the runs', so that one slow run does
// not make the row.

import (
	"fmt"
	"slices"
)

// medianOf makes a row's summary and kernel counts from its runs. A run
// that failed fails the row, saying which run: a failure is not averaged
// away. With one run, the row is that run, as the program printed it.
func medianOf(runs []runRecord) (*summary, *kernelCounts, string) {
	for i, r := range runs {
		if r.Error != "" {
			if len(runs) == 1 {
				return r.Summary, r.Kernel, r.Error
			}
			return nil, nil, fmt.Sprintf("run %d of %d: %s", i+1, len(runs), r.Error)
		}
	}
	if len(runs) == 1 {
		return runs[0].Summary, runs[0].Kernel, ""
	}
	summaries := make([]*summary, len(runs))
	for i, r := range runs {
		summaries[i] = r.Summary
	}
	return medianSummary(summaries), medianKernel(runs), ""
}

// medianSummary is a summary made here whose figures are each the median
// of the runs'. Its requests, and the syscall counts' names, are those of
// the run with the median wall time; each call's count is its median.
func medianSummary(runs []*summary) *summary {
	middle := slices.Clone(runs)
	slices.SortFunc(middle, func(a, b *summary) int {
		switch {
		case a.WallMS < b.WallMS:
			return -1
		case a.WallMS > b.WallMS:
			return 1
		}
		return 0
	})
	m := *middle[(len(middle)-1)/2]
	m.printed = nil // made here: encoded from its fields
	figure := func(of func(*summary) float64) float64 {
		values := make([]float64, len(runs))
		for i, s := range runs {
			values[i] = of(s)
		}
		return median(values)
	}
	m.WallMS = figure(func(s *summary) float64 { return s.WallMS })
	m.CPUMS = figure(func(s *summary) float64 { return s.CPUMS })
	m.MaxRSSKB = int64(figure(func(s *summary) float64 { return float64(s.MaxRSSKB) }))
	m.Wasted = int(figure(func(s *summary) float64 { return float64(s.Wasted) }))
	m.AchievedConcurrency = figure(func(s *summary) float64 { return s.AchievedConcurrency })
	m.OK = int(figure(func(s *summary) float64 { return float64(s.OK) }))
	m.Failed = m.Requests - m.OK
	if m.Syscalls != nil {
		m.Syscalls = map[string]int{}
		for name := range middle[(len(middle)-1)/2].Syscalls {
			m.Syscalls[name] = int(figure(func(s *summary) float64 { return float64(s.Syscalls[name]) }))
		}
	}
	if !slices.ContainsFunc(runs, func(s *summary) bool { return s.PeakInFlight == nil }) {
		peak := int(figure(func(s *summary) float64 { return float64(*s.PeakInFlight) }))
		m.PeakInFlight = &peak
	} else {
		m.PeakInFlight = nil // unknown in some run: unknown
	}
	if !slices.ContainsFunc(runs, func(s *summary) bool { return s.ServerCPUMS == nil }) {
		used := figure(func(s *summary) float64 { return *s.ServerCPUMS })
		m.ServerCPUMS = &used
	} else {
		m.ServerCPUMS = nil
	}
	return &m
}

// medianKernel is the median of each counter; nil when some run could not
// read them.
func medianKernel(runs []runRecord) *kernelCounts {
	var overflows, drops, retrans []float64
	for _, r := range runs {
		if r.Kernel == nil {
			return nil
		}
		overflows = append(overflows, float64(r.Kernel.ListenOverflows))
		drops = append(drops, float64(r.Kernel.ListenDrops))
		retrans = append(retrans, float64(r.Kernel.SynRetrans))
	}
	return &kernelCounts{int64(median(overflows)), int64(median(drops)), int64(median(retrans))}
}

// median is the middle value, or the mean of the two middle ones.
func median(values []float64) float64 {
	sorted := slices.Sorted(slices.Values(values))
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
