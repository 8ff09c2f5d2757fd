package usage

import (
	"os"
	"testing"
	"time"
)

// TestGroupCommitCoversOnlyEarlierAppends: a charge returns only after an fsync that started
// after its append; a charge appended while an fsync runs waits for the next one, and one fsync
// covers every charge appended before it started.
func TestGroupCommitCoversOnlyEarlierAppends(t *testing.T) {
	j, _, err := openJournal(t.TempDir(), 64<<20, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	started := make(chan uint64, 4) // appends made when each fsync started
	release := make(chan struct{})
	j.fsync = func(f *os.File) error {
		j.mu.Lock()
		w := j.written
		j.mu.Unlock()
		started <- w
		<-release
		return datasync(f)
	}
	appendOne := func() uint64 {
		pos, err := j.append(line{RequestID: "r", Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	syncAsync := func(pos uint64) chan error {
		done := make(chan error, 1)
		go func() { done <- j.sync(pos) }()
		return done
	}
	returned := func(c chan error) bool {
		select {
		case err := <-c:
			if err != nil {
				t.Errorf("sync: %v", err)
			}
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}

	a := syncAsync(appendOne())
	if w := <-started; w != 1 {
		t.Fatalf("first fsync started with %d appends; want 1", w)
	}
	// Appended while the first fsync runs: not covered by it.
	b1, b2 := appendOne(), appendOne()
	b := syncAsync(b1)
	c := syncAsync(b2)
	if returned(a) {
		t.Fatal("a charge returned before its fsync finished")
	}
	release <- struct{}{}
	if !returned(a) {
		t.Fatal("the first charge did not return after its fsync")
	}
	if returned(b) || returned(c) {
		t.Fatal("charges appended during an fsync returned without one of their own")
	}
	if w := <-started; w != 3 {
		t.Fatalf("second fsync started with %d appends; want 3", w)
	}
	release <- struct{}{}
	if !returned(b) || !returned(c) {
		t.Fatal("charges did not return after the fsync that covered them")
	}
	if n := j.fsyncs.Load(); n != 2 {
		t.Errorf("%d fsyncs for 3 charges in two rounds; want 2 (one round covers both later charges)", n)
	}
	// A position already covered returns at once, without an fsync.
	if err := j.sync(3); err != nil {
		t.Fatal(err)
	}
	if n := j.fsyncs.Load(); n != 2 {
		t.Errorf("a covered position caused an fsync (%d)", n)
	}
}

// TestSyncAfterCloseReturns: a charge waiting when the journal closes is covered by close's own
// fsyncs and returns; so does one that asks afterwards.
func TestSyncAfterCloseReturns(t *testing.T) {
	j, _, err := openJournal(t.TempDir(), 64<<20, -1)
	if err != nil {
		t.Fatal(err)
	}
	pos, err := j.append(line{RequestID: "r", Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- j.sync(pos) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("sync after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sync after close hangs")
	}
}
