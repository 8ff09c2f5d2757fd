package usage

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imagegw/imagegw/internal/iouring"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// File names inside the journal directory.
const (
	// legacyOutbox is the single outbox file of earlier versions; its lines are events and it is
	// replayed like a segment.
	legacyOutbox = "outbox.jsonl"
	segPrefix    = "journal-"
	segSuffix    = ".jsonl"
	lockFile     = "outbox.lock"
)

// Line kinds.
const (
	kindEvent = ""  // a finished request's event (also every line of a legacy outbox)
	kindBegin = "b" // a request about to call upstream; an event with the same run and seq ends it
	kindAbort = "x" // ends a begin without an event: the request never reached an upstream
)

// line is one journal line. The field names are the journal's format: keep them stable.
type line struct {
	Kind       string       `json:"j,omitempty"`
	Run        string       `json:"run,omitempty"`
	Seq        uint64       `json:"seq,omitempty"`
	RequestID  string       `json:"request_id"`
	Time       time.Time    `json:"time"`
	KeyID      string       `json:"key_id"`
	Model      string       `json:"model"`
	Provider   string       `json:"provider,omitempty"`
	Channel    string       `json:"channel,omitempty"`
	Operation  string       `json:"operation,omitempty"`
	NRequested int          `json:"n_requested"`
	NDelivered int          `json:"n_delivered"`
	Width      int          `json:"width,omitempty"`
	Height     int          `json:"height,omitempty"`
	Steps      int          `json:"steps,omitempty"`
	Cost       money.Amount `json:"cost"`
	Currency   string       `json:"currency"`
	Status     string       `json:"status"`
	ErrorKind  string       `json:"error_kind,omitempty"`
	LatencyMS  int64        `json:"latency_ms,omitempty"`
	UpstreamMS int64        `json:"upstream_ms,omitempty"`
	Slice      string       `json:"slice,omitempty"`
	ClientID   string       `json:"client_request_id,omitempty"`
	// The provider's cost (store.UsageEvent.UpstreamCost and friends); absent in lines written
	// before it was recorded, which replay with no upstream cost.
	UpstreamCost     money.Amount `json:"upstream_cost,omitempty"`
	UpstreamListCost money.Amount `json:"upstream_list_cost,omitempty"`
	UpstreamCurrency string       `json:"upstream_currency,omitempty"`
}

// fill sets l to the line of e, in place (a line is 0.4 KB: Begin and Commit keep one copy of
// it on a request's stack, not a temporary and a copy).
func (l *line) fill(kind, run string, seq uint64, e *store.UsageEvent) {
	// Field by field: assigning a line literal through l builds it in a temporary first.
	l.Kind, l.Run, l.Seq, l.RequestID, l.Time, l.KeyID, l.Model = kind, run, seq, e.RequestID, e.Time, e.KeyID, e.Model
	l.Provider, l.Channel, l.Operation, l.NRequested, l.NDelivered = e.Provider, e.Channel, e.Operation, e.NRequested, e.NDelivered
	l.Width, l.Height, l.Steps, l.Cost, l.Currency, l.Status = e.Width, e.Height, e.Steps, e.Cost, e.Currency, e.Status
	l.ErrorKind, l.LatencyMS, l.UpstreamMS, l.Slice, l.ClientID = e.ErrorKind, e.LatencyMS, e.UpstreamMS, e.Slice, e.ClientRequestID
	l.UpstreamCost, l.UpstreamListCost, l.UpstreamCurrency = e.UpstreamCost, e.UpstreamListCost, e.UpstreamCurrency
}

func (l *line) event() store.UsageEvent {
	return store.UsageEvent{RequestID: l.RequestID, Time: l.Time, KeyID: l.KeyID, Model: l.Model, Provider: l.Provider,
		Channel: l.Channel, Operation: l.Operation, NRequested: l.NRequested, NDelivered: l.NDelivered, Width: l.Width,
		Height: l.Height, Steps: l.Steps, Cost: l.Cost, Currency: l.Currency, Status: l.Status, ErrorKind: l.ErrorKind,
		LatencyMS: l.LatencyMS, UpstreamMS: l.UpstreamMS, Slice: l.Slice, ClientRequestID: l.ClientID,
		UpstreamCost: l.UpstreamCost, UpstreamListCost: l.UpstreamListCost, UpstreamCurrency: l.UpstreamCurrency}
}

// segment is one journal file. Appenders write whole lines under journal.mu; size only grows
// while the segment is active. The writer goroutine owns the other fields.
type segment struct {
	num  int
	path string
	f    *os.File
	old  bool // written by an earlier process

	size   int64 // guarded by journal.mu: where the next append goes
	zeroed int64 // guarded by journal.mu: the file holds zeros from size up to here (preallocated)

	read   int64 // writer: offset read up to
	open   int   // writer: begin lines read and not yet ended
	sealed bool  // guarded by journal.mu: no more appends (rotated, or old)
}

// memLine is a line appended by this process, at [start, end) of seg.
type memLine struct {
	seg        *segment
	start, end int64
	l          line
}

// defaultMemLines bounds the lines the journal holds in memory for the writer (about 400 bytes
// each): over a second of appends at 10,000 requests a second.
const defaultMemLines = 1 << 15

// journal is the append side: a directory of segments, the active one last.
type journal struct {
	dir  string
	lock *os.File

	mu      sync.Mutex
	segs    []*segment // oldest first; the last is active
	written uint64     // appends so far (positions for group commit)
	bytes   int64      // bytes in all segments
	buf     []byte
	closed  bool

	// mem holds the lines this process appended that the writer has not read, in append order,
	// up to memCap of them: the writer takes them from here instead of reading the file back.
	// Past memCap (the store is down or slow) lines are only in the file, and the writer reads
	// them from there until it reaches lines memory holds again.
	mem       []memLine
	memCap    int
	fileReads atomic.Int64 // reads of this process's segments from the file

	// Commits staged for the next fsync (commit): its leader writes their lines as one append.
	// Guarded by mu; open is nil while none is staged.
	staged []line
	open   *batch
	ends   []int // append's scratch: where each line ends

	// Group commit: one fsync covers every append made before it started.
	smu     sync.Mutex
	scond   *sync.Cond
	synced  uint64
	syncing bool
	// arrivals counts appends and staged commits, for the busy rate (measureRate).
	arrivals atomic.Uint64

	fsync   func(f *os.File, ring bool) error // j.datasync; tests replace it before the first append
	ring    *iouring.Syncer                   // nil where io_uring is unavailable, and why in ringErr
	ringErr error

	// fill wakes the preallocator, which keeps the active segment zero-filled preallocAhead
	// bytes past its appends; nil once the journal closes.
	fill     chan struct{}
	fillDone chan struct{}
	// fileMu is held by a leader from taking the active file to the end of its fsync, and by
	// whatever closes a file, so an fsync never runs on a closed file.
	fileMu   sync.Mutex
	segBytes int64
	fsyncs   atomic.Int64
	// ringFsyncs counts the fsyncs made through the ring (while busy, or while fsyncs are slow).
	ringFsyncs atomic.Int64
	// fsyncTime is a moving average of the fsyncs' durations (the last eighth weighs most);
	// guarded by smu.
	fsyncTime time.Duration
	// syncGap is the least time between the starts of two fsyncs while the journal is busy: a
	// leader waits out the rest of it, so one fsync covers more appends, since each costs
	// kernel CPU. A quiet journal's leader fsyncs at once.
	syncGap  time.Duration
	lastSync time.Time // guarded by smu
	// busy: appends arrived at busyRate or faster over the last rate window (rateFrom on,
	// from append rateBase); guarded by smu.
	busy     bool
	rateFrom time.Time
	rateBase uint64
}

// openJournal locks dir, lists the segments left by earlier processes (terminating a torn last
// line) and starts a new active segment after them. torn counts repaired segments.
func openJournal(dir string, segBytes int64, syncGap time.Duration) (j *journal, torn int, err error) {
	if dir == "" {
		return nil, 0, errors.New("usage: journal: no directory configured")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, 0, fmt.Errorf("usage: journal: create %s: %w", dir, err)
	}
	lk, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("usage: journal: open lock: %w", err)
	}
	if err := lockExclusive(lk); err != nil {
		_ = lk.Close()
		return nil, 0, fmt.Errorf("usage: journal %s is in use by another process (%w); give each gateway process its own billing.outbox_dir", dir, err)
	}
	j = &journal{dir: dir, lock: lk, segBytes: segBytes, syncGap: syncGap, memCap: defaultMemLines,
		fill: make(chan struct{}, 1), fillDone: make(chan struct{})}
	j.fsync = j.datasync
	j.ring, j.ringErr = iouring.New()
	j.scond = sync.NewCond(&j.smu)
	go j.preallocate(j.fill) // the channel, not the field: close may nil the field before this runs
	defer func() {
		if err != nil {
			_ = j.close()
		}
	}()
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("usage: journal: list %s: %w", dir, err)
	}
	next := 1
	for _, de := range names {
		num := -1
		switch name := de.Name(); {
		case name == legacyOutbox:
			num = 0
		case strings.HasPrefix(name, segPrefix) && strings.HasSuffix(name, segSuffix):
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix))
			if err != nil || n <= 0 {
				continue
			}
			num = n
		default:
			continue
		}
		seg, repaired, err := openOld(filepath.Join(dir, de.Name()), num)
		if err != nil {
			return nil, 0, err
		}
		if repaired {
			torn++
		}
		j.segs = append(j.segs, seg)
		j.bytes += seg.size
		next = max(next, num+1)
	}
	slices.SortFunc(j.segs, func(a, b *segment) int { return a.num - b.num })
	if err := j.newSegment(next); err != nil {
		return nil, 0, err
	}
	return j, torn, nil
}

// openOld opens a segment of an earlier process, ending a torn last line. Its lines end where
// its preallocated zeros start.
func openOld(path string, num int) (*segment, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, fmt.Errorf("usage: journal: open %s: %w", path, err)
	}
	end, last, err := dataEnd(f)
	if err != nil {
		_ = f.Close()
		return nil, false, fmt.Errorf("usage: journal: read %s: %w", path, err)
	}
	seg := &segment{num: num, path: path, f: f, old: true, sealed: true, size: end}
	torn := false
	if end > 0 && last != '\n' {
		// A crash mid-append left a partial line: end it, so the reader skips (and reports) it.
		torn = true
		if _, err := f.WriteAt([]byte{'\n'}, end); err != nil {
			_ = f.Close()
			return nil, false, fmt.Errorf("usage: journal: repair %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, false, fmt.Errorf("usage: journal: sync %s: %w", path, err)
		}
		seg.size++
	}
	return seg, torn, nil
}

// dataEnd finds where the lines of a segment end: at its first zero byte (lines never hold one:
// JSON escapes control characters), or at the end of the file. It also returns the byte before
// that point. Everything an fsync covered lies before the first zero, whatever a crash left
// after it.
func dataEnd(f *os.File) (end int64, last byte, err error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.ReadAt(buf, end)
		if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
			n = i
			err = io.EOF
		}
		if n > 0 {
			end += int64(n)
			last = buf[n-1]
		}
		if err == io.EOF {
			return end, last, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
}

// newSegment creates segment num and makes it the active one; j.mu is held (or j is not shared).
func (j *journal) newSegment(num int) error {
	path := filepath.Join(j.dir, fmt.Sprintf("%s%06d%s", segPrefix, num, segSuffix))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("usage: journal: create %s: %w", path, err)
	}
	if err := syncDir(j.dir); err != nil {
		_ = f.Close()
		return err
	}
	if n := len(j.segs); n > 0 {
		j.segs[n-1].sealed = true
	}
	j.segs = append(j.segs, &segment{num: num, path: path, f: f})
	j.wakeFill()
	return nil
}

// syncDir fsyncs a directory so a newly created file's entry survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("usage: journal: open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("usage: journal: sync %s: %w", dir, err)
	}
	return nil
}

var errClosed = errors.New("usage: the recorder is closed")

// append writes lines as one write to the active segment and returns the append's position
// for sync. A failed write is cut back, so it leaves no partial line.
func (j *journal) append(ls ...line) (uint64, error) {
	j.arrivals.Add(1)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return 0, errClosed
	}
	return j.appendLocked(ls)
}

// appendLocked is append with j.mu held, whether or not the journal is closed to new appends.
func (j *journal) appendLocked(ls []line) (uint64, error) {
	b := j.buf[:0]
	end := j.ends[:0]
	for i := range ls {
		var err error
		if b, err = appendLine(b, &ls[i]); err != nil {
			return 0, fmt.Errorf("usage: journal: encode event %s: %w", ls[i].RequestID, err)
		}
		end = append(end, len(b))
	}
	j.buf, j.ends = b, end
	seg := j.segs[len(j.segs)-1]
	n, err := seg.f.WriteAt(b, seg.size)
	if err != nil {
		if n > 0 { // zero what was written: the next append goes here again
			_ = writeZeros(seg.f, seg.size, int64(n))
		}
		return 0, fmt.Errorf("usage: journal: append to %s: %w", seg.path, err)
	}
	start := seg.size
	if len(j.mem)+len(ls) <= j.memCap {
		for i := range ls {
			from := start
			if i > 0 {
				from += int64(end[i-1])
			}
			// Filled in place, every field: a memLine literal (or a zero one to append) is a
			// 0.4 KB temporary on the stack of every request.
			j.mem = slices.Grow(j.mem, 1)[:len(j.mem)+1]
			ml := &j.mem[len(j.mem)-1]
			ml.seg, ml.start, ml.end = seg, from, start+int64(end[i])
			ml.l = ls[i] // its own statement: a tuple assignment copies ls[i] to a temporary first
		}
	}
	seg.size += int64(n)
	j.bytes += int64(n)
	j.written++
	pos := j.written
	if seg.zeroed-seg.size < preallocAhead/2 {
		j.wakeFill()
	}
	if seg.size >= j.segBytes {
		// Rotate: the sealed segment is fsync'd first, so a sync of the new one covers all.
		if err := seg.f.Sync(); err == nil {
			if err := j.newSegment(seg.num + 1); err != nil {
				return pos, nil // keep appending to the full segment; rotation retries next time
			}
		}
	}
	return pos, nil
}

// read appends to dst the lines of seg from off up to end, at most limit of them, and returns
// them, the offset after the last one, and the lines that did not decode. Lines this process appended come from memory
// while the journal still holds them (the writer keeps up, so it never reads back and decodes
// what was just written); the rest, and every segment of an earlier process, from the file.
func (j *journal) read(seg *segment, off, end int64, limit int, dst []line) ([]line, int64, []corruptLine, error) {
	if seg.old {
		return readLinesTo(dst, seg, off, end, limit)
	}
	j.mu.Lock()
	k := 0 // drop what the writer has passed reading the file
	for k < len(j.mem) && (j.mem[k].seg.num < seg.num || j.mem[k].seg == seg && j.mem[k].start < off) {
		k++
	}
	j.dropMemFront(k)
	if len(j.mem) > 0 && j.mem[0].seg == seg && j.mem[0].start > off {
		end = min(end, j.mem[0].start) // read the file up to where memory takes over
	}
	if len(j.mem) == 0 || j.mem[0].seg != seg || j.mem[0].start != off {
		j.mu.Unlock()
		j.fileReads.Add(1)
		return readLinesTo(dst, seg, off, end, limit)
	}
	n := 0
	for n < len(j.mem) && n < limit && j.mem[n].seg == seg && j.mem[n].start == off && j.mem[n].end <= end {
		off = j.mem[n].end
		n++
	}
	for i := range n {
		dst = append(dst, j.mem[i].l)
	}
	j.dropMemFront(n)
	j.mu.Unlock()
	return dst, off, nil, nil
}

// dropMemFront forgets the first n lines held in memory; j.mu is held. The queue keeps its
// array (the writer usually takes all of it: nothing to move), unless much would have to move.
func (j *journal) dropMemFront(n int) {
	if n == 0 {
		return
	}
	if rest := len(j.mem) - n; rest <= n || rest <= 1024 {
		k := copy(j.mem, j.mem[n:])
		clear(j.mem[k:]) // let the strings go
		j.mem = j.mem[:k]
		return
	}
	clear(j.mem[:n])
	j.mem = j.mem[n:]
}

// dropMem forgets the lines held in memory for seg; j.mu is held.
func (j *journal) dropMem(seg *segment) {
	j.mem = slices.DeleteFunc(j.mem, func(m memLine) bool { return m.seg == seg })
}

// sync returns once every append up to pos is fsync'd: concurrent callers share one fsync.
func (j *journal) sync(pos uint64) error {
	j.smu.Lock()
	defer j.smu.Unlock()
	for j.synced < pos {
		if j.syncing {
			j.scond.Wait()
			continue
		}
		if err := j.lead(); err != nil {
			return err
		}
	}
	return nil
}

// batch is the commits staged for one fsync; its leader records the outcome.
type batch struct {
	done     bool // guarded by smu
	writeErr error
	syncErr  error
}

// finish records the outcome of the batch's write and of the fsync after it; j.smu is held.
func (b *batch) finish(writeErr, syncErr error) {
	b.done, b.writeErr = true, writeErr
	if writeErr == nil && syncErr != nil {
		b.syncErr = fmt.Errorf("usage: journal: fsync: %w", syncErr)
	}
}

// commit appends l and returns once it is fsync'd. The caller does not write it: the line is
// staged, and the leader of the next fsync writes every staged line as one append before it
// fsyncs, so a group of charges costs one write and one fsync, not a write each (a write of a
// line costs about as much kernel time as a request's other system calls together). writeErr is
// a failed write (the line is not in the journal); syncErr a failed fsync (the line is written:
// it survives a crash of the process, maybe not of the machine).
func (j *journal) commit(l *line) (writeErr, syncErr error) {
	j.arrivals.Add(1)
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errClosed, nil
	}
	b := j.open
	if b == nil {
		b = new(batch)
		j.open = b
	}
	// Grown, then assigned in its own statement: append(j.staged, *l) builds the 0.4 KB line in
	// a temporary on the stack of every charge (whose leader goes on to write the batch).
	j.staged = slices.Grow(j.staged, 1)[:len(j.staged)+1]
	j.staged[len(j.staged)-1] = *l
	j.mu.Unlock()
	j.smu.Lock()
	defer j.smu.Unlock()
	for !b.done {
		if j.syncing {
			j.scond.Wait()
			continue
		}
		_ = j.lead() // the batch holds what concerns its commits
	}
	return b.writeErr, b.syncErr
}

// lead makes one group fsync: it writes the staged commits as one append, then fsyncs the
// active segment, which covers every append made before. j.smu is held on entry and on return
// (released in between) and no other leader runs.
func (j *journal) lead() error {
	j.syncing = true
	now := time.Now()
	busy := j.measureRate(j.arrivals.Load(), now)
	ring := j.ring != nil && (busy || j.fsyncTime > ringAbove)
	if wait := j.syncGap - now.Sub(j.lastSync); wait > 0 && busy {
		j.smu.Unlock()
		time.Sleep(wait)
		j.smu.Lock()
	}
	j.lastSync = time.Now()
	j.smu.Unlock()
	j.fileMu.Lock()
	j.mu.Lock()
	b, werr := j.flushStaged()
	target := j.written
	f := j.segs[len(j.segs)-1].f // nil once close fsync'd and closed every segment
	j.mu.Unlock()
	var err error
	var took time.Duration
	if f != nil {
		if ring {
			j.ringFsyncs.Add(1)
		}
		start := time.Now()
		err = j.fsync(f, ring)
		took = time.Since(start)
		j.fsyncs.Add(1)
	}
	j.fileMu.Unlock()
	j.smu.Lock()
	j.syncing = false
	if f != nil {
		j.fsyncTime += (took - j.fsyncTime) / 8
	}
	if b != nil {
		b.finish(werr, err)
	}
	j.scond.Broadcast()
	if err != nil {
		return fmt.Errorf("usage: journal: fsync: %w", err)
	}
	j.synced = max(j.synced, target)
	return nil
}

// flushStaged writes the staged commits as one append and returns their batch (nil if none);
// j.mu is held.
func (j *journal) flushStaged() (*batch, error) {
	b := j.open
	if b == nil {
		return nil, nil
	}
	_, err := j.appendLocked(j.staged)
	clear(j.staged) // let the strings go
	j.staged, j.open = j.staged[:0], nil
	return b, err
}

// syncAll returns once every append made before the call is fsync'd.
func (j *journal) syncAll() error {
	j.mu.Lock()
	pos := j.written
	j.mu.Unlock()
	return j.sync(pos)
}

// state is what the writer needs to read on: the segments and each one's size and seal.
func (j *journal) snapshot() (segs []*segment, sizes []int64, sealed []bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	segs = slices.Clone(j.segs)
	sizes = make([]int64, len(segs))
	sealed = make([]bool, len(segs))
	for i, s := range segs {
		sizes[i], sealed[i] = s.size, s.sealed
	}
	return segs, sizes, sealed
}

// remove deletes a sealed segment the writer is done with.
func (j *journal) remove(seg *segment) error {
	j.fileMu.Lock() // no fsync in flight on its file
	defer j.fileMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	i := slices.Index(j.segs, seg)
	if i < 0 || i == len(j.segs)-1 {
		return nil
	}
	j.segs = slices.Delete(j.segs, i, i+1)
	j.dropMem(seg)
	j.bytes -= seg.size
	_ = seg.f.Close()
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("usage: journal: remove %s: %w", seg.path, err)
	}
	return nil
}

// truncateActive empties the active segment when the writer has everything in it and nothing in
// it is open, so an idle gateway's journal does not grow.
func (j *journal) truncateActive(seg *segment, read int64) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || j.segs[len(j.segs)-1] != seg || seg.size != read || seg.size == 0 {
		return false, nil
	}
	// Zeros over the lines keep the file preallocated; a crash before they reach the disk leaves
	// lines the store already has, which a replay skips (a request id is inserted once).
	if err := writeZeros(seg.f, 0, seg.size); err != nil {
		return false, fmt.Errorf("usage: journal: truncate %s: %w", seg.path, err)
	}
	seg.zeroed = max(seg.zeroed, seg.size)
	j.dropMem(seg) // the writer has read all of it; offsets start again at 0
	j.bytes -= seg.size
	seg.size = 0
	return true, nil
}

// stopAppends refuses appends from now on.
func (j *journal) stopAppends() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
}

func (j *journal) diskBytes() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.bytes
}

// close syncs and closes every segment and releases the lock.
func (j *journal) close() error {
	j.mu.Lock()
	j.closed = true
	fill := j.fill
	j.fill = nil
	j.mu.Unlock()
	if fill != nil {
		close(fill)
		<-j.fillDone
	}
	j.fileMu.Lock()
	defer j.fileMu.Unlock()
	j.smu.Lock()
	defer j.smu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	var errs []error
	staged, werr := j.flushStaged() // charges waiting for a leader: the Syncs below cover them
	var serr error
	for _, s := range j.segs {
		if s.f != nil {
			if !s.old {
				err := s.f.Sync()
				errs, serr = append(errs, err), cmp.Or(serr, err)
			}
			errs = append(errs, s.f.Close())
			s.f = nil
		}
	}
	if staged != nil {
		staged.finish(werr, serr)
		j.scond.Broadcast()
	}
	if j.lock != nil {
		errs = append(errs, unlock(j.lock), j.lock.Close())
		j.lock = nil
	}
	if j.ring != nil {
		errs = append(errs, j.ring.Close())
		j.ring = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("usage: journal: close: %w", err)
	}
	return nil
}

// corruptLine describes a line that could not be decoded.
type corruptLine struct {
	path   string
	offset int64
	err    error
}

// readLines decodes the lines of seg from off up to end, at most limit of them. It returns the
// lines, the offset after the last line read, and the lines that did not decode.
func readLines(seg *segment, off, end int64, limit int) ([]line, int64, []corruptLine, error) {
	return readLinesTo(nil, seg, off, end, limit)
}

// readLinesTo is readLines appending to out.
func readLinesTo(out []line, seg *segment, off, end int64, limit int) ([]line, int64, []corruptLine, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(seg.f, off, end-off), int(min(64<<10, max(end-off, 4<<10))))
	limit += len(out)
	var bad []corruptLine
	for len(out) < limit && off < end {
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: read the rest of it.
			more, err2 := br.ReadBytes('\n')
			raw, err = append(slices.Clone(raw), more...), err2
		}
		if len(raw) == 0 && err != nil {
			if err == io.EOF {
				break
			}
			return out, off, bad, fmt.Errorf("usage: journal: read %s: %w", seg.path, err)
		}
		if raw[0] == 0 {
			break // the preallocated rest of the file
		}
		start := off
		off += int64(len(raw))
		var l line
		if derr := json.Unmarshal(bytes.TrimSpace(raw), &l); derr != nil {
			bad = append(bad, corruptLine{seg.path, start, derr})
			continue
		}
		if l.RequestID == "" {
			bad = append(bad, corruptLine{seg.path, start, errors.New("no request_id")})
			continue
		}
		out = append(out, l)
	}
	return out, off, bad, nil
}

// preallocAhead is how far past its appends the active segment is kept zero-filled. An append
// that overwrites zeros leaves the file's size and blocks as they were, so the fsync after it
// flushes data only; an append that grows the file makes its fsync commit the file system's
// journal too (measured on this project's CI machine: about 40% less CPU per charge, and half
// the fsync latency, with preallocation).
const preallocAhead = 1 << 20

// zeros is a block of zeros to write from.
var zeros = make([]byte, 64<<10)

// writeZeros writes n zeros at off.
func writeZeros(f *os.File, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// wakeFill asks the preallocator to top up the active segment; j.mu is held.
func (j *journal) wakeFill() {
	if j.fill == nil {
		return
	}
	select {
	case j.fill <- struct{}{}:
	default:
	}
}

// preallocate keeps the active segment zero-filled up to preallocAhead past its appends (and
// not past the segment size), writing under j.mu, a block at a time, so zeros never land on a
// line; then it flushes the zeros, so the fsync of a charge does not carry them.
func (j *journal) preallocate(fill <-chan struct{}) {
	defer close(j.fillDone)
	for range fill {
		var f *os.File
		for {
			j.mu.Lock()
			seg := j.segs[len(j.segs)-1]
			from := max(seg.zeroed, seg.size)
			to := min(seg.size+preallocAhead, j.segBytes)
			if j.closed || from >= to {
				j.mu.Unlock()
				break
			}
			n := min(to-from, int64(len(zeros)))
			_, err := seg.f.WriteAt(zeros[:n], from)
			if err == nil {
				seg.zeroed = from + n
				f = seg.f
			}
			j.mu.Unlock()
			if err != nil {
				break // appends grow the file instead; the next wake tries again
			}
		}
		if f != nil {
			_ = j.datasync(f, true) // nobody waits for it; safe against a concurrent close (os.ErrClosed)
		}
	}
}

// datasync flushes f's data and the metadata needed to read it back (its size), not its times:
// through io_uring with ring (where the leader waits in the poller), else with an fdatasync.
//
// A blocking fdatasync holds its goroutine's P (one of GOMAXPROCS) until sysmon takes it back,
// and other goroutines wait to run. At full load the journal's several hundred fsyncs a second
// idled a tenth of two cores that way (vmstat: 8-12 % iowait; with the ring, lean max req/s rose
// by about a sixth), so a busy journal uses the ring. So does one whose fsyncs are slow (averaging
// over ringAbove): at 300 and 1,000 charges a second, with fsyncs of 1-2 ms on this project's VM,
// a P sat in fdatasync most of the time and 1.5-3.5 % of the gateway's goroutines waited over
// 1 ms for a P (the runtime's /sched/latencies, imagegw-load's rate scenario), against 0.4-0.6 %
// through the ring (0.1 % in a bare proxy), at no higher median latency. A quiet journal on a
// fast disk calls fdatasync itself: the ring's hops (an async worker, then the poller) add about
// 0.1 ms to a charge (measured with the journal on tmpfs: median 0.87-0.91 ms against 0.73-0.83),
// more than a short fdatasync's P costs the rest.
//
// The flush holds a reference to f (SyscallConn's Control), so f cannot be closed under it: a
// closed f fails with os.ErrClosed.
func (j *journal) datasync(f *os.File, ring bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) {
		if ring && j.ring != nil {
			err = j.ring.Datasync(f)
			return
		}
		err = syscall.Fdatasync(int(fd))
	})
	return cmp.Or(cerr, err)
}

// ringAbove is the average fsync duration above which a quiet journal flushes through the ring:
// above the ring's own cost (about 0.1 ms), well below a cloud disk's flush (0.5-2 ms), above a
// flush the disk's own capacitors make durable at once (tens of microseconds).
const ringAbove = 200 * time.Microsecond

// The journal counts as busy, and then spaces its fsyncs by syncGap, while appends arrive at
// busyRate a second or faster, measured over windows of at least rateWindow. A request appends
// two lines (its begin and its end), so that is about 2,000 requests a second. Below it the 1 ms
// gap would save few fsyncs and only add its wait (rounded up to the poller's millisecond) to the
// charges behind it; at full load (several thousand requests a second) it makes each fsync cover
// several. It used to count as busy after any fsync that covered 4 or more appends, which a
// moment's bunching at 1,000 requests a second does: with the journal on tmpfs (where an fsync
// costs nothing), 3 % of charges then waited 1-2.5 ms, all of lean's p99 gap to a bare proxy;
// measured by rate, none did (imagegw-load -limiter-stats).
const (
	busyRate   = 4000
	rateWindow = 20 * time.Millisecond
)

// measureRate returns whether the journal is busy, closing the rate window if it is long enough;
// pos is the arrivals (appends and staged commits) so far at now, and j.smu is held.
func (j *journal) measureRate(pos uint64, now time.Time) bool {
	if d := now.Sub(j.rateFrom); d >= rateWindow {
		j.busy = pos > j.rateBase && float64(pos-j.rateBase) >= busyRate*d.Seconds()
		j.rateFrom, j.rateBase = now, pos
	}
	return j.busy
}
