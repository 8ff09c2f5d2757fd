// Package imagestore keeps images the gateway hosts itself: when a provider returns bytes and
// the client asked for response_format=url, the bytes are written to a local directory under an
// unguessable name (128 random bits) and served until they expire.
package imagestore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Store writes and serves hosted images.
type Store struct {
	dir string
	ttl time.Duration
	now func() time.Time
}

// Open prepares dir (creating it) for images that live ttl.
func Open(dir string, ttl time.Duration) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("imagestore: %w", err)
	}
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &Store{dir: dir, ttl: ttl, now: time.Now}, nil
}

// TTL is how long a hosted image stays available.
func (s *Store) TTL() time.Duration { return s.ttl }

var extOf = map[string]string{"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}

// Put writes an image and returns its file name (the last path element of its URL).
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
		return "", fmt.Errorf("imagestore: write: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("imagestore: write: %w", err)
	}
	return name, nil
}

var nameRE = regexp.MustCompile(`^[0-9a-f]{32}\.(png|jpg|webp|gif)$`)

// ServeHTTP serves GET …/{name}: the last path element names the image.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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

// Sweep deletes images older than the TTL and returns how many.
func (s *Store) Sweep() (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || e.IsDir() || s.now().Sub(info.ModTime()) <= s.ttl {
			continue
		}
		if os.Remove(filepath.Join(s.dir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}
