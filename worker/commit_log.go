package worker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// CommitLog appends one JSON line per committed step that this worker took
// part in: the step, its generation and every rank's segments. Every rank
// writes every rank's share, so the union of the survivors' logs holds the
// committed share of a worker that was killed right after the commit: the
// log records what the ring committed, not what one process managed to
// write. Each line is one write(2), so a killed process leaves whole lines
// (at worst the last one torn, which ReadCommitLog skips).
type CommitLog struct {
	mu sync.Mutex
	f  *os.File
}

// CommitLine is one line of a CommitLog.
type CommitLine struct {
	Step       uint64    `json:"step"`
	Generation uint64    `json:"gen"`
	Writer     uint64    `json:"writer"`
	Pairs      int       `json:"pairs"`
	AtMS       int64     `json:"at_ms"` // wall clock of the write, Unix ms
	Ranks      []RankLog `json:"ranks"`
}

// RankLog is one rank's share of a committed step.
type RankLog struct {
	Worker   uint64    `json:"worker"`
	Segments []Segment `json:"segs"`
}

// OpenCommitLog opens (appending) or creates the log at path.
func OpenCommitLog(path string) (*CommitLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("worker: commit log: %w", err)
	}
	return &CommitLog{f: f}, nil
}

// Write appends c as seen by worker self.
func (l *CommitLog) Write(self uint64, c Commit) error {
	line := CommitLine{Step: c.Step, Generation: c.Generation, Writer: self, Pairs: c.Pairs, AtMS: time.Now().UnixMilli()}
	for _, r := range c.Ranks {
		line.Ranks = append(line.Ranks, RankLog{Worker: r.Worker, Segments: r.Segments})
	}
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("worker: commit log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("worker: commit log: %w", err)
	}
	return nil
}

// Close closes the file.
func (l *CommitLog) Close() error { return l.f.Close() }

// ReadCommitLog reads every whole line of the log at path; a torn last line
// (the writer was killed mid-write) is skipped.
func ReadCommitLog(path string) ([]CommitLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("worker: commit log: %w", err)
	}
	defer f.Close()
	var out []CommitLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		var l CommitLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("worker: commit log %s: %w", path, err)
	}
	return out, nil
}
