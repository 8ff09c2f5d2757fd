package usage

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestGroupCommitCoversOnlyEarlierAppends: a charge returns only after an fsync that started
// after its append; a charge appended while an fsync runs waits for the next one, and one fsync
// covers every charge appended before it started.
func TestGroupCommitCoversOnlyEarlierAppends(t *testing.T) {
	j, _, err := openJournal(t.TempDir(), 64<<20, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.close() }) // after holdFsyncs' cleanup (cleanups run last first)
	started, release := holdFsyncs(t, j)
	appendOne := func() uint64 {
		pos, err := j.append(line{RequestID: "r", Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	syncAsync := func(pos uint64) chan error { return async(func() error { return j.sync(pos) }) }

	a := syncAsync(appendOne())
	if w := <-started; w != 1 {
		t.Fatalf("first fsync started with %d appends; want 1", w)
	}
	// Appended while the first fsync runs: not covered by it.
	b1, b2 := appendOne(), appendOne()
	b := syncAsync(b1)
	c := syncAsync(b2)
	if delivered(t, a) {
		t.Fatal("a charge returned before its fsync finished")
	}
	release <- struct{}{}
	if !delivered(t, a) {
		t.Fatal("the first charge did not return after its fsync")
	}
	if delivered(t, b) || delivered(t, c) {
		t.Fatal("charges appended during an fsync returned without one of their own")
	}
	if w := <-started; w != 3 {
		t.Fatalf("second fsync started with %d appends; want 3", w)
	}
	release <- struct{}{}
	if !delivered(t, b) || !delivered(t, c) {
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

// holdFsyncs makes each of j's fsyncs report the appends made when it started, then wait for a
// release before it flushes. Once the test ends (a failure included) they no longer wait, so a
// close of j registered with t.Cleanup before this call does not hang.
func holdFsyncs(t *testing.T, j *journal) (started <-chan uint64, release chan<- struct{}) {
	s, r, ended := make(chan uint64, 4), make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(ended) })
	j.fsync = func(f *os.File, ring bool) error {
		j.mu.Lock()
		w := j.written
		j.mu.Unlock()
		select {
		case s <- w:
		case <-ended:
		}
		select {
		case <-r:
		case <-ended:
		}
		return j.datasync(f, ring)
	}
	return s, r
}

// async runs f on its own goroutine; its error arrives on the channel.
func async(f func() error) chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return done
}

// delivered reports whether c delivered within 50 ms (reporting an error it carried).
func delivered(t *testing.T, c chan error) bool {
	t.Helper()
	select {
	case err := <-c:
		if err != nil {
			t.Errorf("returned %v", err)
		}
		return true
	case <-time.After(50 * time.Millisecond):
		return false
	}
}

// mustDeliver fails the test unless c delivers nil within 5 s.
func mustDeliver(t *testing.T, c chan error, what string) {
	t.Helper()
	select {
	case err := <-c:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s hangs", what)
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
	mustDeliver(t, async(func() error { return j.sync(pos) }), "sync after close")
}

// TestCommitsShareOneWrite: a charge's line is written by the leader of the fsync that covers it,
// together with every charge staged before that fsync started, as one append; each returns only
// after that fsync, and the lines are in the file in the order they were staged.
func TestCommitsShareOneWrite(t *testing.T) {
	dir := t.TempDir()
	j, _, err := openJournal(dir, 64<<20, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.close() }) // after holdFsyncs' cleanup (cleanups run last first)
	started, release := holdFsyncs(t, j)
	commitAsync := func(id string) chan error {
		return async(func() error { return errors.Join(j.commit(&line{RequestID: id, Time: time.Now()})) })
	}
	staged := func(n int) func() bool {
		return func() bool {
			j.mu.Lock()
			defer j.mu.Unlock()
			return len(j.staged) == n
		}
	}

	a := commitAsync("a")
	if w := <-started; w != 1 {
		t.Fatalf("the first fsync started after %d appends; want 1 (its own line)", w)
	}
	// Staged while that fsync runs: not written yet, and not covered by it.
	var later []chan error
	for i := range 5 {
		later = append(later, commitAsync(fmt.Sprintf("b%d", i)))
		waitFor(t, "the charge to be staged", staged(i+1))
	}
	release <- struct{}{}
	if !delivered(t, a) {
		t.Fatal("the first charge did not return after its fsync")
	}
	if w := <-started; w != 2 {
		t.Fatalf("the second fsync started after %d appends; want 2 (the five staged lines as one)", w)
	}
	for _, c := range later {
		if delivered(t, c) {
			t.Fatal("a charge returned before the fsync that covers it")
		}
	}
	release <- struct{}{}
	for _, c := range later {
		if !delivered(t, c) {
			t.Fatal("a charge did not return after the fsync that covered it")
		}
	}
	ls := journalLines(t, dir)
	var ids []string
	for _, l := range ls {
		ids = append(ids, l.RequestID)
	}
	if ids[0] != "a" || len(ids) != 6 {
		t.Fatalf("the journal holds %v; want a, then the five others", ids)
	}
	slices.Sort(ids[1:])
	if want := []string{"a", "b0", "b1", "b2", "b3", "b4"}; !slices.Equal(ids, want) {
		t.Errorf("the journal holds %v; want %v", ids, want)
	}
}

// TestCommitStagedWhenTheJournalCloses: a charge staged while the journal closes is written by
// close, covered by its fsyncs, and returns without an error; one after close is refused.
func TestCommitStagedWhenTheJournalCloses(t *testing.T) {
	dir := t.TempDir()
	j, _, err := openJournal(dir, 64<<20, -1)
	if err != nil {
		t.Fatal(err)
	}
	// A leader that never gets to lead: the charge stays staged until close writes it.
	j.smu.Lock()
	j.syncing = true
	j.smu.Unlock()
	done := async(func() error { return errors.Join(j.commit(&line{RequestID: "c", Time: time.Now()})) })
	waitFor(t, "the charge to be staged", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return len(j.staged) == 1
	})
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	mustDeliver(t, done, "a charge staged at close")
	if ls := journalLines(t, dir); len(ls) != 1 || ls[0].RequestID != "c" {
		t.Fatalf("the journal holds %v; want the staged charge", ls)
	}
	if werr, _ := j.commit(&line{RequestID: "d", Time: time.Now()}); !errors.Is(werr, errClosed) {
		t.Errorf("a charge after close: %v; want errClosed", werr)
	}
}

// TestJournalPreallocated: the active segment is kept zero-filled ahead of its appends, so an
// append does not grow the file; a restart reads exactly the lines written (not the zeros), and
// emptying the active segment zeros its lines instead of cutting the file.
func TestJournalPreallocated(t *testing.T) {
	dir := t.TempDir()
	j, _, err := openJournal(dir, 64<<20, -1)
	if err != nil {
		t.Fatal(err)
	}
	seg := j.segs[len(j.segs)-1]
	fileSize := func() int64 {
		fi, err := os.Stat(seg.path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	waitFor(t, "the segment to be preallocated", func() bool { return fileSize() >= preallocAhead })
	before := fileSize()
	var pos uint64
	for i := range 100 {
		if pos, err = j.append(line{RequestID: fmt.Sprintf("r%d", i), Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.sync(pos); err != nil {
		t.Fatal(err)
	}
	written := j.diskBytes()
	if got := fileSize(); got != before {
		t.Errorf("appends of %d bytes into the preallocated zeros changed the file from %d to %d bytes", written, before, got)
	}
	for i := 100; j.diskBytes() < preallocAhead; i++ { // past the first preallocation
		if pos, err = j.append(line{RequestID: fmt.Sprintf("r%d", i), Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.sync(pos); err != nil {
		t.Fatal(err)
	}
	written = j.diskBytes()
	waitFor(t, "the preallocation to follow the appends", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return seg.zeroed >= seg.size+preallocAhead/2 && fileSize() >= seg.zeroed
	})
	if err := j.close(); err != nil {
		t.Fatal(err)
	}

	j2, torn, err := openJournal(dir, 64<<20, -1)
	if err != nil {
		t.Fatal(err)
	}
	old := j2.segs[0]
	if torn != 0 || old.size != written {
		t.Fatalf("reopened: %d torn, the old segment holds %d bytes of lines; want 0 torn and %d bytes", torn, old.size, written)
	}
	ls, _, bad, err := readLines(old, 0, old.size+preallocAhead, 1<<20)
	if err != nil || len(bad) != 0 || len(ls) != int(j.written) || ls[len(ls)-1].RequestID != fmt.Sprintf("r%d", j.written-1) {
		t.Fatalf("read back %d lines (%d bad, err %v); want the %d written", len(ls), len(bad), err, j.written)
	}
	// Emptying the active segment zeros its lines and keeps its size.
	act := j2.segs[len(j2.segs)-1]
	if pos, err = j2.append(line{RequestID: "a", Time: time.Now()}, line{RequestID: "b", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := j2.sync(pos); err != nil {
		t.Fatal(err)
	}
	if ok, err := j2.truncateActive(act, act.size); !ok || err != nil {
		t.Fatalf("truncate: %v %v", ok, err)
	}
	if end, _, err := dataEnd(act.f); err != nil || end != 0 {
		t.Fatalf("after emptying, lines end at %d (%v); want 0", end, err)
	}
	if err := j2.close(); err != nil {
		t.Fatal(err)
	}
}

// TestBusyJournalFsyncsThroughTheRing: while appends arrive at busyRate or faster, fsyncs go
// through io_uring (the leader waits in the poller instead of holding a P in fdatasync); a quiet
// journal with fast fsyncs calls fdatasync itself, and a moment's bunching at a quiet rate (an
// fsync covering several appends) does not make it busy: it used to, and the 1 ms gap and the
// ring's hops then made 3 % of charges wait 1-2.5 ms at 1,000 charges a second. Either way a
// charge returns after its line is flushed.
func TestBusyJournalFsyncsThroughTheRing(t *testing.T) {
	j := ringJournal(t)
	var err error
	j.fsync = func(f *os.File, ring bool) error { return nil } // a disk that flushes at once: only the rate decides
	var ids []string
	charge := func(n int) { // n appends, then one sync covering them
		t.Helper()
		var pos uint64
		for range n {
			id := fmt.Sprintf("r%d", len(ids))
			ids = append(ids, id)
			if pos, err = j.append(line{RequestID: id, Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.sync(pos); err != nil {
			t.Fatal(err)
		}
	}
	ringAfter := func(what string, want int64) {
		t.Helper()
		if n, all := j.ringFsyncs.Load(), j.fsyncs.Load(); n != want {
			t.Fatalf("after %s: %d of %d fsyncs through the ring; want %d", what, n, all, want)
		}
	}
	charge(1)
	ringAfter("a quiet charge", 0)
	// Eight charges bunched into one fsync, then one more, all within a few milliseconds: the
	// rate over a window is what counts, and a window of 9 appends is far below busyRate.
	charge(8)
	time.Sleep(rateWindow)
	charge(1)
	ringAfter("a bunch of 8 at a quiet rate", 0)
	// 1,000 appends in one window make an fsync a busy one (the one that ends the window, which
	// is this charge's or the next's): at least busyRate a second unless the window lasts a
	// quarter of a second (it lasts about rateWindow).
	charge(1000)
	time.Sleep(rateWindow)
	charge(1)
	ringAfter("a window of 1,000 appends", 1)
	// A quiet spell ends it.
	time.Sleep(rateWindow)
	charge(1)
	time.Sleep(rateWindow)
	charge(1)
	ringAfter("a quiet spell", 1)

	seg := j.segs[len(j.segs)-1]
	ls, _, bad, err := readLines(seg, 0, seg.size, 2000)
	if err != nil || len(bad) > 0 || len(ls) != len(ids) {
		t.Fatalf("read back %d lines (%v, %d corrupt); want %d", len(ls), err, len(bad), len(ids))
	}
	for i, l := range ls {
		if l.RequestID != ids[i] {
			t.Fatalf("line %d is %s, want %s", i, l.RequestID, ids[i])
		}
	}
}

// ringJournal opens a journal in a temporary directory, and skips the test where the kernel has
// no io_uring (but not on CI's Linux, which has it).
func ringJournal(t *testing.T) *journal {
	t.Helper()
	j, _, err := openJournal(t.TempDir(), 64<<20, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.close() })
	if j.ring == nil {
		if runtime.GOOS == "linux" && os.Getenv("CI") == "true" { // CI's kernel has it: a failing New is a bug, not a skip
			t.Fatalf("io_uring unavailable on CI's Linux: %v", j.ringErr)
		}
		t.Skip("no io_uring on this kernel: every fsync is an fdatasync:", j.ringErr)
	}
	return j
}

// TestSlowFsyncsGoThroughTheRing: a quiet journal whose fsyncs take long (a cloud disk's flush,
// 1 ms here) flushes through the ring, so the leader's wait does not hold a P, and calls
// fdatasync itself again once they are fast.
func TestSlowFsyncsGoThroughTheRing(t *testing.T) {
	j := ringJournal(t)
	var last atomic.Bool // whether the last fsync went through the ring
	// Fast fsyncs are a stub: real ones on a temporary directory can be slow on a loaded machine.
	fast := func(f *os.File, ring bool) error { last.Store(ring); return nil }
	j.fsync = fast
	n := 0
	charge := func() bool { // one quiet charge; whether its fsync went through the ring
		t.Helper()
		n++
		pos, err := j.append(line{RequestID: fmt.Sprintf("r%d", n), Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.sync(pos); err != nil {
			t.Fatal(err)
		}
		return last.Load()
	}
	for range 3 {
		if charge() {
			t.Fatal("a fast fsync went through the ring; want fdatasync")
		}
	}
	// Slow ones: a real flush (through the ring once chosen) after a millisecond. The fsync
	// function is swapped between charges, while no leader runs.
	j.fsync = func(f *os.File, ring bool) error {
		last.Store(ring)
		time.Sleep(time.Millisecond)
		return j.datasync(f, ring)
	}
	for i := 1; !charge(); i++ {
		if i == 10 {
			t.Fatal("10 fsyncs of over 1 ms and none through the ring")
		}
	}
	j.fsync = fast
	for i := 1; charge(); i++ {
		if i == 40 {
			t.Fatal("40 instant fsyncs after slow ones and still through the ring")
		}
	}
	if got := j.ringFsyncs.Load(); got == 0 || got >= j.fsyncs.Load() {
		t.Fatalf("ring fsyncs %d of %d; want some, not all", got, j.fsyncs.Load())
	}
}

// TestSyncAfterFlushesInTheBackground: with SyncAfter, a charge returns without waiting for an
// fsync; one starts at once after a quiet spell, the next ones at least SyncAfter apart, each
// covering what was appended before it; and a crash of the process (no fsync at all) loses no
// charge.
func TestSyncAfterFlushesInTheBackground(t *testing.T) {
	const every = 40 * time.Millisecond
	st := openSQLite(t)
	dir := t.TempDir()
	r := open(t, &flaky{w: st, down: true}, dir, Options{SyncAfter: every})
	type start struct {
		at      time.Time
		written uint64
	}
	starts := make(chan start, 100)
	release := make(chan struct{})
	r.j.fsync = func(f *os.File, ring bool) error { // before the first append
		r.j.mu.Lock()
		w := r.j.written
		r.j.mu.Unlock()
		starts <- start{time.Now(), w}
		<-release
		return r.j.datasync(f, ring)
	}
	record(t, r, event(0)) // returns with the fsync it set off still blocked
	first := <-starts
	if first.written != 1 {
		t.Fatalf("the first background fsync started with %d appends; want 1", first.written)
	}
	for i := 1; i <= 20; i++ { // appended while that fsync is stuck: none waits for it
		record(t, r, event(i))
	}
	close(release)
	prev := first
	for prev.written < 21 {
		select {
		case s := <-starts:
			// The flusher spaces the starts of its flushes by every; these stamps, taken a
			// little later inside each, can be a little closer. Back to back would be µs.
			if gap := s.at.Sub(prev.at); gap < every/2 {
				t.Errorf("fsyncs started %v apart; SyncAfter is %v", gap, every)
			}
			if s.written < prev.written {
				t.Errorf("an fsync covered %d appends after one covered %d", s.written, prev.written)
			}
			prev = s
		case <-time.After(10 * time.Second):
			t.Fatalf("the last fsync covered %d of 21 appends, and no other started", prev.written)
		}
	}
	waitFor(t, "the fsync covering every charge to end", func() bool {
		r.j.smu.Lock()
		defer r.j.smu.Unlock()
		return r.j.synced >= 21
	})

	record(t, r, event(21)) // the store is down: it stays in the journal
	crash(r)
	r2 := open(t, st, dir, Options{})
	if err := r2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantExactly(t, st, 22)
}

// TestSyncAfterLogsAFailingDiskOnce: background fsyncs that fail are logged once for the streak
// (not every SyncAfter), and their recovery once.
func TestSyncAfterLogsAFailingDiskOnce(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	r := open(t, nopWriter{}, t.TempDir(), Options{SyncAfter: time.Millisecond, Logger: zap.New(core)})
	var calls atomic.Int64
	r.j.fsync = func(f *os.File, ring bool) error {
		if calls.Add(1) <= 5 {
			return syscall.EIO
		}
		return r.j.datasync(f, ring)
	}
	for i := 0; calls.Load() < 6; i++ {
		if i == 10000 {
			t.Fatalf("%d charges set off %d background fsyncs; want 6", i, calls.Load())
		}
		record(t, r, event(i))
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, "the recovery to be logged", func() bool {
		return logs.FilterMessageSnippet("succeed again").Len() == 1
	})
	if n := logs.FilterMessageSnippet("background fsync failed").Len(); n != 1 {
		t.Errorf("%d error lines for one streak of 5 failed fsyncs; want 1", n)
	}
}
