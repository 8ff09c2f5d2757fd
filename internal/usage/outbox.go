package usage

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// OutboxFile is the name of the outbox inside its directory.
const OutboxFile = "outbox.jsonl"

// lockFile is the name of the file locked for the outbox's owner.
const lockFile = "outbox.lock"

// outboxLine is one event on disk. The field names are the outbox's format: keep them stable.
type outboxLine struct {
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
}

func toLine(e store.UsageEvent) outboxLine {
	return outboxLine{RequestID: e.RequestID, Time: e.Time, KeyID: e.KeyID, Model: e.Model, Provider: e.Provider,
		Channel: e.Channel, Operation: e.Operation, NRequested: e.NRequested, NDelivered: e.NDelivered, Width: e.Width,
		Height: e.Height, Steps: e.Steps, Cost: e.Cost, Currency: e.Currency, Status: e.Status, ErrorKind: e.ErrorKind,
		LatencyMS: e.LatencyMS, UpstreamMS: e.UpstreamMS}
}

func (l outboxLine) event() store.UsageEvent {
	return store.UsageEvent{RequestID: l.RequestID, Time: l.Time, KeyID: l.KeyID, Model: l.Model, Provider: l.Provider,
		Channel: l.Channel, Operation: l.Operation, NRequested: l.NRequested, NDelivered: l.NDelivered, Width: l.Width,
		Height: l.Height, Steps: l.Steps, Cost: l.Cost, Currency: l.Currency, Status: l.Status, ErrorKind: l.ErrorKind,
		LatencyMS: l.LatencyMS, UpstreamMS: l.UpstreamMS}
}

// corruptLine describes a line of the outbox that could not be decoded.
type corruptLine struct {
	offset int64
	err    error
}

// outbox is the append-only file of events waiting for the store. Appends come from the
// writer and from Record (queue full), so they hold mu; only the writer reads and truncates.
type outbox struct {
	mu   sync.Mutex
	path string
	f    *os.File
	lock *os.File
	// size is the file's length; every byte below it is a complete, fsync'd append.
	size int64
	// done is the offset up to which the events are in the store (or skipped as corrupt).
	done int64
	// pending counts the lines between done and size.
	pending int
	buf     bytes.Buffer
}

// openOutbox opens (creating) the outbox in dir, locks it, terminates a torn last line and
// counts the events waiting. torn reports whether the last line was torn.
func openOutbox(dir string) (o *outbox, torn bool, err error) {
	if dir == "" {
		return nil, false, errors.New("usage: outbox: no directory configured")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, false, fmt.Errorf("usage: outbox: create %s: %w", dir, err)
	}
	lk, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, false, fmt.Errorf("usage: outbox: open lock: %w", err)
	}
	if err := lockExclusive(lk); err != nil {
		_ = lk.Close()
		return nil, false, fmt.Errorf("usage: outbox %s is in use by another process (%w); give each gateway process its own billing.outbox_dir", dir, err)
	}
	path := filepath.Join(dir, OutboxFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		_ = lk.Close()
		return nil, false, fmt.Errorf("usage: outbox: open %s: %w", path, err)
	}
	o = &outbox{path: path, f: f, lock: lk}
	defer func() {
		if err != nil {
			_ = o.close()
		}
	}()
	if err := syncDir(dir); err != nil {
		return nil, false, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("usage: outbox: stat %s: %w", path, err)
	}
	o.size = st.Size()
	if o.size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, o.size-1); err != nil {
			return nil, false, fmt.Errorf("usage: outbox: read %s: %w", path, err)
		}
		if last[0] != '\n' {
			// A crash mid-append left a partial line: end it, so the next append starts a line of
			// its own and replay skips (and reports) the fragment.
			torn = true
			if _, err := f.Write([]byte{'\n'}); err != nil {
				return nil, false, fmt.Errorf("usage: outbox: repair %s: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return nil, false, fmt.Errorf("usage: outbox: sync %s: %w", path, err)
			}
			o.size++
		}
		n, err := countLines(io.NewSectionReader(f, 0, o.size))
		if err != nil {
			return nil, false, fmt.Errorf("usage: outbox: read %s: %w", path, err)
		}
		o.pending = n
	}
	return o, torn, nil
}

func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// syncDir fsyncs a directory so a newly created file's entry survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("usage: outbox: open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("usage: outbox: sync %s: %w", dir, err)
	}
	return nil
}

// append writes events as one write and fsyncs it. On failure the file is cut back to its
// previous length, so a failed append leaves no partial line behind.
func (o *outbox) append(events []store.UsageEvent) error {
	if len(events) == 0 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return errors.New("usage: outbox is closed")
	}
	o.buf.Reset()
	enc := json.NewEncoder(&o.buf) // Encode ends each value with '\n'
	for _, e := range events {
		if err := enc.Encode(toLine(e)); err != nil {
			return fmt.Errorf("usage: outbox: encode event %s: %w", e.RequestID, err)
		}
	}
	n, err := o.f.Write(o.buf.Bytes())
	if err == nil {
		err = o.f.Sync()
	}
	if err != nil {
		if n > 0 {
			_ = o.f.Truncate(o.size)
		}
		return fmt.Errorf("usage: outbox: append to %s: %w", o.path, err)
	}
	o.size += int64(n)
	o.pending += len(events)
	return nil
}

// state returns the replay offset, the file length and the pending count.
func (o *outbox) state() (done, size int64, pending int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done, o.size, o.pending
}

// read decodes up to limit events from offset off, stopping at end. It returns the events, the
// offset after the last line read and the lines that did not decode.
func (o *outbox) read(off, end int64, limit int) ([]store.UsageEvent, int64, []corruptLine, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(o.f, off, end-off), 64<<10)
	var events []store.UsageEvent
	var bad []corruptLine
	for len(events) < limit && off < end {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				break
			}
			return events, off, bad, fmt.Errorf("usage: outbox: read %s: %w", o.path, err)
		}
		start := off
		off += int64(len(line))
		var l outboxLine
		if derr := json.Unmarshal(bytes.TrimSpace(line), &l); derr != nil {
			bad = append(bad, corruptLine{offset: start, err: derr})
			continue
		}
		if l.RequestID == "" {
			bad = append(bad, corruptLine{offset: start, err: errors.New("no request_id")})
			continue
		}
		events = append(events, l.event())
	}
	return events, off, bad, nil
}

// advance records that the lines up to off (n of them) are done.
func (o *outbox) advance(off int64, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = off
	o.pending = max(o.pending-n, 0)
}

// truncateIfDone empties the file when every line in it is done, and reports whether it did.
func (o *outbox) truncateIfDone() (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil || o.done < o.size || o.size == 0 {
		return false, nil
	}
	if err := o.f.Truncate(0); err != nil {
		return false, fmt.Errorf("usage: outbox: truncate %s: %w", o.path, err)
	}
	if err := o.f.Sync(); err != nil {
		return false, fmt.Errorf("usage: outbox: sync %s: %w", o.path, err)
	}
	o.size, o.done, o.pending = 0, 0, 0
	return true, nil
}

// close closes the file and releases the lock.
func (o *outbox) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	if o.f != nil {
		errs = append(errs, o.f.Close())
		o.f = nil
	}
	if o.lock != nil {
		errs = append(errs, unlock(o.lock), o.lock.Close())
		o.lock = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("usage: outbox: close: %w", err)
	}
	return nil
}
