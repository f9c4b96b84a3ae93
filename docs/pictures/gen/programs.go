package main

// programs.go runs the real things the pictures are drawn from: the go
// command, the test server, the stages, the comparison and the benchmark.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// moduleRoot asks the go command where the module is, so the stages are
// built and benchmarked from the right folder.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module's folder with the go command (run this from the repository): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// buildPrograms builds the test server and every stage into a new folder,
// which the caller removes. 05 builds everywhere (on epoll on Linux, on
// kqueue on macOS and FreeBSD, and elsewhere as a program that says why it
// cannot run).
func buildPrograms(ctx context.Context, root string) (string, error) {
	dir, err := os.MkdirTemp("", "blocking-to-epoll-pictures-")
	if err != nil {
		return "", fmt.Errorf("making a folder for the programs: %w", err)
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator), "./internal/testserver/cmd/testserver"}
	for _, s := range stages {
		args = append(args, "./"+s.Dir)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building the stages: %w\n%s", err, out)
	}
	return dir, nil
}

// startServer starts the test server program on a free loopback port and
// waits until it accepts connections. stop ends it and waits for it to exit.
func startServer(ctx context.Context, program string) (addr string, stop func(), err error) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("finding a free port: %w", err)
	}
	addr = probe.Addr().String()
	probe.Close()

	cmd := exec.CommandContext(ctx, program, "-addr", addr)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting the test server: %w", err)
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt) // it closes its connections and exits
		cmd.Wait()
	}
	for range 100 { // up to 5 s for it to listen
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("the test server did not start listening on %s", addr)
}

// runStage runs one stage's program against addr with -json and returns its
// summary. Exit code 1 means some requests failed: the summary says which.
func runStage(ctx context.Context, program, addr string, n int, delay time.Duration) (*summary, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n)*delay+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, "-addr", addr, "-n", strconv.Itoa(n), "-delay", delay.String(), "-json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return nil, fmt.Errorf("%s: %w: %s", filepath.Base(program), err, strings.TrimSpace(stderr.String()))
	}
	var s summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		return nil, fmt.Errorf("%s printed no JSON summary: %w", filepath.Base(program), err)
	}
	return &s, nil
}

// comparisonArgs are the flags the comparison runs with (after -bin DIR).
var comparisonArgs = []string{"-workloads", "hundred,many,scale"}

// runComparison runs stage 06's -compare -json with the programs in bin and
// returns the JSON it printed.
func runComparison(ctx context.Context, bin string) ([]byte, error) {
	args := append([]string{"-compare", "-json", "-bin", bin}, comparisonArgs...)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "06-goroutines-compare"), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("06-goroutines-compare -compare: %w", err)
	}
	return out, nil
}

// benchmarkArgs is make curve: the go test command that measures one wait.
var benchmarkArgs = []string{"test", "-run", "^$", "-bench", "WaitCost", "-benchtime", "2000x", "./06-goroutines-compare"}

// runBenchmark runs the wait-cost benchmark from the module's folder and
// returns what it printed.
func runBenchmark(ctx context.Context, root string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", benchmarkArgs...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(benchmarkArgs, " "), err, out)
	}
	return string(out), nil
}

// A machine is where figures come from. The fields are those of stage 06's
// comparison JSON, which has no JSON tags for them.
type machine struct {
	OS, Arch, Kernel, CPU, Go string
	Cores, MaxFDs             int
}

// describeMachine describes this machine (the comparison's JSON carries the
// description of the machine it ran on).
func describeMachine() machine {
	return machine{OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(), Cores: runtime.NumCPU(), CPU: cpuModel(), Kernel: kernelRelease()}
}

// cpuModel reads the processor's name from /proc/cpuinfo on Linux, or asks
// sysctl on macOS and FreeBSD.
func cpuModel() string {
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				return strings.TrimSpace(value)
			}
		}
	}
	for _, key := range []string{"machdep.cpu.brand_string", "hw.model"} {
		if out, err := exec.Command("sysctl", "-n", key).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			return string(bytes.TrimSpace(out))
		}
	}
	return "unknown CPU"
}

// String is the machine line of every picture's subtitle.
func (m machine) String() string {
	system := m.OS
	if m.Kernel != "" {
		system += " " + m.Kernel
	}
	return fmt.Sprintf("%d cores · %s (%s) · %s · %s", m.Cores, m.CPU, m.Arch, system, m.Go)
}
