//go:build unix

package main

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the spawner too, as measure's program is
// (startSpawner starts its own program again).
func TestMain(m *testing.M) {
	if os.Getenv(spawnerEnv) == "1" {
		os.Exit(spawnerMain(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// TestSpawnerRunsPrograms: through the spawner, a program gets its input,
// and measure gets what it printed, its exit code, and its usage; exit code
// 1 is not a failure, any other is, and so is a program that cannot start.
func TestSpawnerRunsPrograms(t *testing.T) {
	sp := startTestSpawner(t)
	l, err := sp.launch(context.Background(), time.Minute, []string{"/bin/sh", "-c", "read line; echo \"got $line\"; echo oops >&2; exit 1"}, []byte("hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(l.stdout) != "got hello\n" || string(l.stderr) != "oops\n" || l.Exit != 1 || l.Error != "" || l.MaxRSSKB <= 0 {
		t.Errorf("stdout %q, stderr %q, exit %d, error %q, peak RSS %d KB; want the script's output, exit 1, no error, a peak", l.stdout, l.stderr, l.Exit, l.Error, l.MaxRSSKB)
	}
	l, err = sp.launch(context.Background(), time.Minute, []string{"/bin/sh", "-c", "exit 2"}, nil)
	if err != nil || l.Error != "exit status 2" {
		t.Errorf("exit 2: error %q, %v; want \"exit status 2\"", l.Error, err)
	}
	l, err = sp.launch(context.Background(), 100*time.Millisecond, []string{"/bin/sh", "-c", "exec sleep 5"}, nil)
	if err != nil || l.Error == "" || l.Wall > 4*time.Second {
		t.Errorf("a program past its time: error %q, %v, after %v; want it killed", l.Error, err, l.Wall)
	}
	l, err = sp.launch(context.Background(), time.Minute, []string{"/no/such/program"}, nil)
	if err != nil || !strings.Contains(l.Error, "no such file") {
		t.Errorf("a program that does not exist: error %q, %v", l.Error, err)
	}
}

// TestSpawnerKeepsMeasuresMemoryOut: on Linux, a program started from a
// large process starts with that process's peak RSS as its own; started by
// the spawner, it does not.
func TestSpawnerKeepsMeasuresMemoryOut(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the peak RSS a program inherits at exec is Linux's")
	}
	const size = 200 << 20
	ballast := make([]byte, size)
	for i := range ballast {
		ballast[i] = 1 // resident: every page touched
	}
	sp := startTestSpawner(t)
	tiny := []string{"/bin/sh", "-c", "exit 0"}
	here, err := launchHere(context.Background(), time.Minute, tiny, nil)
	if err != nil {
		t.Fatal(err)
	}
	spawned, err := sp.launch(context.Background(), time.Minute, tiny, nil)
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(ballast)
	if here.MaxRSSKB < size/1024 {
		t.Logf("started from this process, sh's peak is %d KB: this kernel does not pass on the parent's peak", here.MaxRSSKB)
	}
	t.Logf("peak RSS of sh: %d KB started from this process, %d KB started by the spawner", here.MaxRSSKB, spawned.MaxRSSKB)
	if spawned.MaxRSSKB >= size/1024/2 {
		t.Errorf("started by the spawner, sh's peak is %d KB, with %d KB in this process: want it far below", spawned.MaxRSSKB, size/1024)
	}
}

func startTestSpawner(t *testing.T) *spawner {
	t.Helper()
	sp, err := startSpawner()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.stop)
	return sp
}

// TestSpawnerStopsWithMeasure: when measure's context ends (Ctrl-C,
// SIGTERM), the program the spawner is running is killed, not left to run
// out its time.
func TestSpawnerStopsWithMeasure(t *testing.T) {
	sp := startTestSpawner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	l, err := sp.launch(ctx, time.Minute, []string{"/bin/sh", "-c", "exec sleep 30"}, nil)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the program ran %v after measure stopped", took)
	}
	if err == nil || l.Error == "" {
		t.Errorf("error %v, program's error %q: want both to say it was stopped", err, l.Error)
	}
}
