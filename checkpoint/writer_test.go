package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// blockCommits makes every Save on s wait inside its transaction until the
// returned release is called; entered receives a value as each one arrives.
func blockCommits(t *testing.T, s *Store) (entered <-chan struct{}, release func()) {
	t.Helper()
	in := make(chan struct{}, 8)
	gate := make(chan struct{})
	s.beforeCommit = func() {
		in <- struct{}{}
		<-gate
	}
	var released bool
	release = func() {
		if !released {
			released = true
			close(gate)
		}
	}
	t.Cleanup(release)
	return in, release
}

func waitResult(t *testing.T, ch <-chan Result) Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(time.Minute):
		t.Fatal("no result within a minute")
		return Result{}
	}
}

func TestWriterSavesInTheBackground(t *testing.T) {
	s, _ := openTest(t, Options{})
	entered, release := blockCommits(t, s)
	w := NewWriter(s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	snap := testSnapshot(1, 100, 1<<20)
	done, err := w.Save(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	// Save returned while the write is held inside its transaction: the
	// write is in the background.
	select {
	case <-entered:
	case <-time.After(time.Minute):
		t.Fatal("the background write did not start")
	}
	if !w.Busy() {
		t.Fatal("Busy is false with a write in flight")
	}
	select {
	case r := <-done:
		t.Fatalf("result %+v before the commit", r)
	default:
	}
	// Nothing is visible to readers before the commit.
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Fatalf("before the commit List = %v, %v", infoIDs(list), err)
	}

	// A second checkpoint: TrySave rejects it, Save waits until its context ends.
	second := testSnapshot(2, 200, 4096)
	if _, err := w.TrySave(second); !errors.Is(err, ErrBusy) {
		t.Fatalf("TrySave with a write in flight = %v, want ErrBusy", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = w.Save(short, second)
	cancelShort()
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Save with a write in flight and a short deadline = %v", err)
	}
	// A Save that waits gets its turn once the first write is durable.
	waiting := make(chan (<-chan Result), 1)
	go func() {
		ch, err := w.Save(ctx, second)
		if err != nil {
			t.Error(err)
			close(waiting)
			return
		}
		waiting <- ch
	}()

	release()
	r := waitResult(t, done)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r.Info.Step() != 100 || r.Duration <= 0 {
		t.Fatalf("result %+v", r)
	}
	// Durable means readable from a fresh read of the file.
	_, got, err := s.Load(r.Info.ID)
	if err != nil {
		t.Fatal(err)
	}
	requireSameSnapshot(t, testSnapshot(1, 100, 1<<20), got)

	var ch2 <-chan Result
	select {
	case ch2 = <-waiting:
	case <-time.After(time.Minute):
		t.Fatal("the waiting Save never started")
	}
	if ch2 == nil {
		t.FailNow()
	}
	if r2 := waitResult(t, ch2); r2.Err != nil || r2.Info.Step() != 200 {
		t.Fatalf("second result %+v", r2)
	}
	if _, ok := <-ch2; ok {
		t.Fatal("result channel not closed after its result")
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Save(ctx, second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close = %v, want ErrClosed", err)
	}
	if w.Busy() {
		t.Fatal("a rejected Save left the writer busy")
	}
}

func TestWriterCloseWaitsForTheWriteInFlight(t *testing.T) {
	s, _ := openTest(t, Options{})
	entered, release := blockCommits(t, s)
	w := NewWriter(s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done, err := w.Save(ctx, testSnapshot(1, 1, 4096))
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := w.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a held write = %v, want a deadline error", err)
	}
	release()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, done); r.Err != nil {
		t.Fatal(r.Err)
	}
}

func TestWriterReportsFailures(t *testing.T) {
	s, _ := openTest(t, Options{})
	w := NewWriter(s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bad := testSnapshot(1, 1, 4096)
	bad.Params[0].Data = bad.Params[0].Data[:7]
	if _, err := w.Save(ctx, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Save of an invalid snapshot = %v, want ErrInvalid at once", err)
	}
	// A store closed under the writer: the failure arrives on the channel.
	s.Close()
	done, err := w.Save(ctx, testSnapshot(1, 1, 4096))
	if err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, done); !errors.Is(r.Err, ErrClosed) {
		t.Fatalf("result = %+v, want ErrClosed", r)
	}
}

// TestReadersRunBesideAWrite checks that a write in flight neither blocks
// readers nor shows them anything before it commits.
func TestReadersRunBesideAWrite(t *testing.T) {
	s, _ := openTest(t, Options{})
	prev := testSnapshot(1, 10, 256<<10)
	prevID := mustSave(t, s, prev).ID
	entered, release := blockCommits(t, s)
	w := NewWriter(s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done, err := w.Save(ctx, testSnapshot(2, 20, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	read := make(chan error, 1)
	go func() {
		r, err := s.LatestVerified()
		if err == nil && r.Info.ID != prevID {
			err = fmt.Errorf("LatestVerified during a write = %d, want %d", r.Info.ID, prevID)
		}
		read <- err
	}()
	select {
	case err := <-read:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a reader waited for the write in flight")
	}
	release()
	r := waitResult(t, done)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	latest, err := s.LatestVerified()
	if err != nil || latest.Info.ID != r.Info.ID {
		t.Fatalf("LatestVerified after the write = %+v, %v", latest, err)
	}
	w.Close(ctx)
}
