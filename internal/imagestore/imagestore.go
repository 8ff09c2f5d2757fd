// Package imagestore keeps images the gateway hosts itself: when a provider returns bytes and
// the client asked for response_format=url, the bytes are written to a local directory under an
// unguessable name (128 random bits) and served until they expire or, when the directory holds
// more than its size cap, until newer images push them out (oldest first).
package imagestore

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultMaxBytes caps the bytes of hosted images a store keeps when Options.MaxBytes is 0.
const DefaultMaxBytes int64 = 1 << 30

// DefaultTTL is how long an image is served when Options.TTL is 0.
const DefaultTTL = 24 * time.Hour

// Options configure a Store.
type Options struct {
	// Dir holds the images (created if missing).
	Dir string
	// TTL is how long an image is served; 0 means DefaultTTL.
	TTL time.Duration
	// MaxBytes caps the total size of the images kept: writing past it deletes the oldest
	// images first. 0 means DefaultMaxBytes, negative means unlimited.
	MaxBytes int64
	// Bytes, when set, is kept equal to the bytes of images kept (a Prometheus gauge fits).
	Bytes interface{ Set(float64) }
	// Evictions, when set, counts images deleted to stay under MaxBytes (a Prometheus counter fits).
	Evictions interface{ Add(float64) }
}

// Store writes and serves hosted images. Its methods are safe for concurrent use.
//
// The size cap is kept with an in-memory index of the images this process knows (those found in
// the directory at Open and those it wrote since), oldest first, and their running total; the
// directory is scanned only at Open and by Sweep. Serving reads the directory, so an image
// deleted by eviction or expiry answers 404 at once. When several processes share the
// directory, each caps (and evicts) only what it wrote or found at Open.
type Store struct {
	dir       string
	ttl       time.Duration
	maxBytes  int64
	now       func() time.Time
	gauge     interface{ Set(float64) }
	evictions interface{ Add(float64) }

	mu    sync.Mutex
	order list.List                // of *image, oldest first
	index map[string]*list.Element // name → element of order
	total int64                    // bytes of the images in order
}

// image is one indexed hosted image.
type image struct {
	name string
	size int64
	mod  time.Time
}

// Open prepares o.Dir (creating it), indexes the images already there and, if they exceed the
// cap, evicts the oldest.
func Open(o Options) (*Store, error) {
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("imagestore: %w", err)
	}
	s := &Store{dir: o.Dir, ttl: o.TTL, maxBytes: o.MaxBytes, now: time.Now, gauge: o.Bytes, evictions: o.Evictions,
		index: map[string]*list.Element{}}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	switch {
	case s.maxBytes == 0:
		s.maxBytes = DefaultMaxBytes
	case s.maxBytes < 0:
		s.maxBytes = math.MaxInt64
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("imagestore: %w", err)
	}
	var found []*image
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
			found = append(found, &image{name: e.Name(), size: info.Size(), mod: info.ModTime()})
		case isTemp(e.Name()) && s.now().Sub(info.ModTime()) > time.Minute:
			// Left by a write that a crash interrupted (a minute's margin for another process
			// writing into a shared directory).
			_ = os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
	slices.SortFunc(found, func(a, b *image) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	s.mu.Lock()
	for _, im := range found {
		s.index[im.name] = s.order.PushBack(im)
		s.total += im.size
	}
	victims := s.evictLocked(nil)
	s.mu.Unlock()
	s.remove(victims)
	return s, nil
}

// TTL is how long a hosted image stays available.
func (s *Store) TTL() time.Duration { return s.ttl }

// MaxBytes is the size cap (math.MaxInt64 when unlimited).
func (s *Store) MaxBytes() int64 { return s.maxBytes }

// Bytes returns the total size of the images kept.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Len returns the number of images kept.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

var extOf = map[string]string{"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}

// Put writes an image and returns its file name (the last path element of its URL). When the
// store goes over its cap, the oldest images are deleted before Put returns (never the one just
// written: an image larger than the whole cap is kept until the next Put).
func (s *Store) Put(data []byte, contentType string) (string, error) {
	ext, ok := extOf[contentType]
	if !ok {
		ext = ".png"
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	name := hex.EncodeToString(b[:]) + ext
	tmp := filepath.Join(s.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("imagestore: write: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("imagestore: write: %w", err)
	}
	s.mu.Lock()
	el := s.order.PushBack(&image{name: name, size: int64(len(data)), mod: s.now()})
	s.index[name] = el
	s.total += int64(len(data))
	victims := s.evictLocked(el)
	s.mu.Unlock()
	s.remove(victims)
	return name, nil
}

// evictLocked unindexes the oldest images, except keep, until the total is within the cap, and
// returns them for deletion. s.mu is held.
func (s *Store) evictLocked(keep *list.Element) []*image {
	var victims []*image
	for s.total > s.maxBytes {
		front := s.order.Front()
		if front == nil || front == keep {
			break
		}
		victims = append(victims, s.unindexLocked(front))
	}
	s.setGauge()
	if len(victims) > 0 && s.evictions != nil {
		s.evictions.Add(float64(len(victims)))
	}
	return victims
}

// unindexLocked removes el from the index. s.mu is held.
func (s *Store) unindexLocked(el *list.Element) *image {
	im := s.order.Remove(el).(*image)
	delete(s.index, im.name)
	s.total -= im.size
	return im
}

// setGauge publishes the total. s.mu is held, so the gauge never goes back to an older value.
func (s *Store) setGauge() {
	if s.gauge != nil {
		s.gauge.Set(float64(s.total))
	}
}

// remove deletes the files of unindexed images and returns how many it deleted.
func (s *Store) remove(ims []*image) int {
	n := 0
	for _, im := range ims {
		if os.Remove(filepath.Join(s.dir, im.name)) == nil {
			n++
		}
	}
	return n
}

var nameRE = regexp.MustCompile(`^[0-9a-f]{32}\.(png|jpg|webp|gif)$`)

func isTemp(name string) bool { return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") }

// ServeHTTP serves GET and HEAD …/{name}: the last path element names the image. HEAD answers
// the same headers as GET (Content-Type, Content-Length, Last-Modified, caching) without the
// bytes; other methods are a 405.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if !nameRE.MatchString(name) {
		http.NotFound(w, r)
		return
	}
	p := filepath.Join(s.dir, name)
	st, err := os.Stat(p)
	if err != nil || s.now().Sub(st.ModTime()) > s.ttl {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", fmt.Sprintf("private, max-age=%d, immutable", int(s.ttl.Seconds())))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeFile(w, r, p)
}

// Sweep deletes images older than the TTL and returns how many: the indexed ones, and any other
// expired file in the directory (interrupted writes, another process's images in a shared one).
func (s *Store) Sweep() (int, error) {
	now := s.now()
	s.mu.Lock()
	var expired []*image
	for el := s.order.Front(); el != nil; {
		next := el.Next()
		if now.Sub(el.Value.(*image).mod) > s.ttl {
			expired = append(expired, s.unindexLocked(el))
		}
		el = next
	}
	s.setGauge()
	s.mu.Unlock()
	n := s.remove(expired)

	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return n, err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || e.IsDir() || now.Sub(info.ModTime()) <= s.ttl {
			continue
		}
		s.mu.Lock()
		el, indexed := s.index[e.Name()]
		if indexed {
			// Its file is older than its entry says (a clock step): the file decides.
			s.unindexLocked(el)
			s.setGauge()
		}
		s.mu.Unlock()
		if os.Remove(filepath.Join(s.dir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}
