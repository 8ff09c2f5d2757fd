package imagestore

import (
	"container/list"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// diskOptions configure a disk backend.
type diskOptions struct {
	Dir       string
	TTL       time.Duration
	MaxBytes  int64
	Bytes     interface{ Set(float64) }
	Evictions interface{ Add(float64) }
}

// disk is the local-directory backend: one file per image, written to a temporary name and
// renamed into place, served until its file time plus the TTL.
//
// The size cap is kept with an in-memory index of the images this process knows (those found
// in the directory at open and those it wrote since), oldest first, and their running total;
// the directory is scanned only at open and by Sweep. Serving reads the directory, so an image
// deleted by eviction or expiry answers 404 at once. When several processes share the
// directory, each caps (and evicts) only what it wrote or found at open.
type disk struct {
	dir       string
	ttl       time.Duration
	maxBytes  int64
	gauge     interface{ Set(float64) }
	evictions interface{ Add(float64) }

	mu    sync.Mutex
	order list.List                // of *diskImage, oldest first
	index map[string]*list.Element // name → element of order
	total int64                    // bytes of the images in order
}

// diskImage is one indexed image.
type diskImage struct {
	name    string
	size    int64
	expires time.Time
}

// openDisk prepares o.Dir (creating it), indexes the images already there and, if they exceed
// the cap, evicts the oldest.
func openDisk(o diskOptions) (*disk, error) {
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("imagestore: %w", err)
	}
	d := &disk{dir: o.Dir, ttl: o.TTL, maxBytes: o.MaxBytes, gauge: o.Bytes, evictions: o.Evictions,
		index: map[string]*list.Element{}}
	switch {
	case d.maxBytes == 0:
		d.maxBytes = DefaultMaxBytes
	case d.maxBytes < 0:
		d.maxBytes = math.MaxInt64
	}
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("imagestore: %w", err)
	}
	type found struct {
		im  *diskImage
		mod time.Time
	}
	var ims []found
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		switch {
		case nameRE.MatchString(e.Name()):
			ims = append(ims, found{&diskImage{name: e.Name(), size: info.Size(), expires: info.ModTime().Add(d.ttl)}, info.ModTime()})
		case isTemp(e.Name()) && time.Since(info.ModTime()) > time.Minute:
			// Left by a write that a crash interrupted (a minute's margin for another process
			// writing into a shared directory).
			_ = os.Remove(filepath.Join(d.dir, e.Name()))
		}
	}
	slices.SortFunc(ims, func(a, b found) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.im.name, b.im.name)
	})
	d.mu.Lock()
	for _, f := range ims {
		d.index[f.im.name] = d.order.PushBack(f.im)
		d.total += f.im.size
	}
	victims := d.evictLocked(nil)
	d.mu.Unlock()
	d.remove(victims)
	return d, nil
}

// MaxBytes is the size cap (math.MaxInt64 when unlimited).
func (d *disk) MaxBytes() int64 { return d.maxBytes }

// Bytes returns the total size of the images kept.
func (d *disk) Bytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// Len returns the number of images kept.
func (d *disk) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}

// Put writes an image. When the directory goes over its cap, the oldest images are deleted
// before Put returns (never the one just written: an image larger than the whole cap is kept
// until the next Put).
func (d *disk) Put(_ context.Context, name string, data []byte, _ string, expires time.Time) error {
	tmp := filepath.Join(d.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("imagestore: write: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("imagestore: write: %w", err)
	}
	d.mu.Lock()
	el := d.order.PushBack(&diskImage{name: name, size: int64(len(data)), expires: expires})
	d.index[name] = el
	d.total += int64(len(data))
	victims := d.evictLocked(el)
	d.mu.Unlock()
	d.remove(victims)
	return nil
}

// Get opens the image's file (an *os.File: served with ranges); it expires at its file time
// plus the TTL.
func (d *disk) Get(_ context.Context, name string, _ bool) (*Object, error) {
	f, err := os.Open(filepath.Join(d.dir, name))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("imagestore: %w", err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, ErrNotFound
	}
	// For a HEAD too: ServeContent answers it from the file without reading it.
	return &Object{Body: f, Size: st.Size(), ContentType: typeOf[filepath.Ext(name)], ModTime: st.ModTime(), Expires: st.ModTime().Add(d.ttl)}, nil
}

// evictLocked unindexes the oldest images, except keep, until the total is within the cap, and
// returns them for deletion. d.mu is held.
func (d *disk) evictLocked(keep *list.Element) []*diskImage {
	var victims []*diskImage
	for d.total > d.maxBytes {
		front := d.order.Front()
		if front == nil || front == keep {
			break
		}
		victims = append(victims, d.unindexLocked(front))
	}
	d.setGauge()
	if len(victims) > 0 && d.evictions != nil {
		d.evictions.Add(float64(len(victims)))
	}
	return victims
}

// unindexLocked removes el from the index. d.mu is held.
func (d *disk) unindexLocked(el *list.Element) *diskImage {
	im := d.order.Remove(el).(*diskImage)
	delete(d.index, im.name)
	d.total -= im.size
	return im
}

// setGauge publishes the total. d.mu is held, so the gauge never goes back to an older value.
func (d *disk) setGauge() {
	if d.gauge != nil {
		d.gauge.Set(float64(d.total))
	}
}

// remove deletes the files of unindexed images and returns how many it deleted.
func (d *disk) remove(ims []*diskImage) int {
	n := 0
	for _, im := range ims {
		if os.Remove(filepath.Join(d.dir, im.name)) == nil {
			n++
		}
	}
	return n
}

func isTemp(name string) bool { return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") }

// Sweep deletes images expired at now and returns how many: the indexed ones, and any other
// expired file in the directory (interrupted writes, another process's images in a shared one).
func (d *disk) Sweep(_ context.Context, now time.Time) (int, error) {
	d.mu.Lock()
	var expired []*diskImage
	for el := d.order.Front(); el != nil; {
		next := el.Next()
		if now.After(el.Value.(*diskImage).expires) {
			expired = append(expired, d.unindexLocked(el))
		}
		el = next
	}
	d.setGauge()
	d.mu.Unlock()
	n := d.remove(expired)

	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return n, err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || e.IsDir() || now.Sub(info.ModTime()) <= d.ttl {
			continue
		}
		d.mu.Lock()
		el, indexed := d.index[e.Name()]
		if indexed {
			// Its file is older than its entry says (a clock step): the file decides.
			d.unindexLocked(el)
			d.setGauge()
		}
		d.mu.Unlock()
		if os.Remove(filepath.Join(d.dir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}
