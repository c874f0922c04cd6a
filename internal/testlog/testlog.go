// Package testlog gives a test the log of what it runs (workers, coordinators) where it helps:
// with VLP_TEST_LOG set every line goes to standard error as it is written, at debug level;
// otherwise the last lines are kept in memory and printed with the test's output only when the
// test fails, so that a failure in CI says what the components were doing.
package testlog

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// keep is the number of lines a test's log keeps.
const keep = 400

// New returns a logger for t. Without VLP_TEST_LOG its lines are printed under title, once, when
// t has failed by the end of the test.
func New(t testing.TB, title string) *slog.Logger {
	if os.Getenv("VLP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	kept := &tail{max: keep}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s, its last %d lines:\n%s", title, kept.max, kept.String())
		}
	})
	return slog.New(slog.NewTextHandler(kept, nil))
}

// tail keeps the last max lines written to it.
type tail struct {
	max   int
	mu    sync.Mutex
	lines []string
}

func (l *tail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.Lines(string(p)) {
		l.lines = append(l.lines, strings.TrimSuffix(line, "\n"))
	}
	if over := len(l.lines) - l.max; over > 0 {
		l.lines = append(l.lines[:0], l.lines[over:]...)
	}
	return len(p), nil
}

// String is the kept lines.
func (l *tail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
