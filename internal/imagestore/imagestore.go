package imagestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxBytes caps the bytes of hosted images a file store keeps when Options.MaxBytes is 0.
const DefaultMaxBytes int64 = 1 << 30

// DefaultTTL is how long an image is served when Options.TTL is 0.
const DefaultTTL = 24 * time.Hour

// DefaultTimeout bounds a wait on the backend: a Put, a Get until the object starts, and any
// pause in a streamed body.
const DefaultTimeout = 30 * time.Second

// maxPresign is the longest a presigned S3 URL can be valid (SigV4's limit).
const maxPresign = 7 * 24 * time.Hour

// ErrNotFound is a Backend's answer for an image it does not have.
var ErrNotFound = errors.New("imagestore: image not found")

// Backend keeps hosted images by name. Names are a Store's (32 hex digits and an extension);
// a Backend does not check them. Implementations are safe for concurrent use.
type Backend interface {
	// Put stores data under name, to be served until expires.
	Put(ctx context.Context, name string, data []byte, contentType string, expires time.Time) error
	// Get opens the image name: its metadata and, unless head, its bytes in Body, which the
	// caller closes. A Body that is also an io.ReadSeeker is served with ranges and
	// conditional requests. A missing image is ErrNotFound; an expired one is returned with
	// its Expires (the Store refuses it).
	Get(ctx context.Context, name string, head bool) (*Object, error)
	// Sweep deletes the images expired at now and returns how many it deleted.
	Sweep(ctx context.Context, now time.Time) (int, error)
}

// Presigner is implemented by backends whose images clients can fetch directly: Presign
// returns a URL for name valid for ttl.
type Presigner interface {
	Presign(ctx context.Context, name string, ttl time.Duration) (string, error)
}

// Object is a stored image as a Backend returns it.
type Object struct {
	// Body reads the bytes (nil for a HEAD).
	Body        io.ReadCloser
	Size        int64
	ContentType string
	ModTime     time.Time
	// Expires is when the image stops being served.
	Expires time.Time
}

// Options configure a Store opened with Open.
type Options struct {
	// URL chooses the backend: "file:///abs/dir", "file:rel/dir" or
	// "s3://bucket/prefix?endpoint=http://host:port&region=…&presign=true" (see ParseURL).
	// Empty means the directory Dir.
	URL string
	// Dir is the local directory used when URL is empty (created if missing).
	Dir string
	// TTL is how long an image is served; 0 means DefaultTTL.
	TTL time.Duration
	// MaxBytes caps the total size of the images a file store keeps: writing past it deletes
	// the oldest images first. 0 means DefaultMaxBytes, negative means unlimited. Object
	// storage has no cap (a bucket lifecycle rule or quota is the place for one).
	MaxBytes int64
	// Bytes, when set, is kept equal to the bytes of images a file store keeps (a Prometheus
	// gauge fits).
	Bytes interface{ Set(float64) }
	// Evictions, when set, counts images a file store deleted to stay under MaxBytes (a
	// Prometheus counter fits).
	Evictions interface{ Add(float64) }
	// Credentials sign S3 requests; empty means anonymous requests (a server without
	// authentication, or a public bucket).
	Credentials Credentials
	// Transport carries S3 requests; nil means a default transport. Tests set it.
	Transport http.RoundTripper
	// Timeout bounds every wait on the object store: an upload, a download until the object
	// starts, and any pause in a streamed download. A store that stops answering (a partition, a
	// hung server) then fails the request that waits on it instead of holding it. 0 means
	// DefaultTimeout.
	Timeout time.Duration
}

// Credentials are S3 credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
// They never appear in an error or a String.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// String shows whether credentials are set, never their values.
func (c Credentials) String() string {
	if c.AccessKeyID == "" {
		return "anonymous"
	}
	return "access key " + redactedKeyID(c.AccessKeyID)
}

// GoString redacts, so %#v does not leak them.
func (c Credentials) GoString() string { return c.String() }

// redactedKeyID shows the first four characters of an access key ID (enough to tell which
// key, as AWS's consoles do).
func redactedKeyID(id string) string {
	if len(id) <= 8 {
		return "[redacted]"
	}
	return id[:4] + "…"
}

// Store writes and serves hosted images. Its methods are safe for concurrent use.
type Store struct {
	b       Backend
	kind    string
	desc    string
	ttl     time.Duration
	timeout time.Duration
	presign bool
	now     func() time.Time
}

// Open opens the backend o.URL names (or the directory o.Dir) and returns a Store on it. An S3
// backend checks its bucket (creating it when missing), so a wrong endpoint, bucket or
// credential fails here, at start, rather than on the first image.
func Open(ctx context.Context, o Options) (*Store, error) {
	ttl := o.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	loc := &Location{Scheme: "file", Dir: o.Dir}
	if o.URL != "" {
		var err error
		if loc, err = ParseURL(o.URL); err != nil {
			return nil, err
		}
	} else if o.Dir == "" {
		return nil, errors.New("imagestore: no URL and no directory")
	}
	switch loc.Scheme {
	case "file":
		d, err := openDisk(diskOptions{Dir: loc.Dir, TTL: ttl, MaxBytes: o.MaxBytes, Bytes: o.Bytes, Evictions: o.Evictions})
		if err != nil {
			return nil, err
		}
		s := New(d, ttl)
		s.kind, s.desc = "file", "file:"+loc.Dir
		return s, nil
	default:
		b, err := openS3(ctx, loc, ttl, o.Credentials, o.Transport)
		if err != nil {
			return nil, err
		}
		s := New(b, ttl)
		s.kind, s.desc, s.presign = "s3", b.String(), loc.Presign
		if o.Timeout > 0 {
			s.timeout = o.Timeout
		}
		return s, nil
	}
}

// New returns a Store on b whose images are served for ttl (0: DefaultTTL).
func New(b Backend, ttl time.Duration) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Store{b: b, kind: "custom", desc: fmt.Sprintf("%T", b), ttl: ttl, timeout: DefaultTimeout, now: time.Now}
}

// TTL is how long a hosted image stays available.
func (s *Store) TTL() time.Duration { return s.ttl }

// Kind is the backend's kind: "file", "s3" (or "custom" for New).
func (s *Store) Kind() string { return s.kind }

// String describes the store for logs, without credentials: "file:./data/images",
// "s3://bucket/prefix at http://host:port (anonymous)".
func (s *Store) String() string { return s.desc }

// Presigned reports whether Link answers presigned object-store URLs.
func (s *Store) Presigned() bool { return s.presign }

// Backend returns the store's backend.
func (s *Store) Backend() Backend { return s.b }

var extOf = map[string]string{"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}

var typeOf = map[string]string{".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif"}

var nameRE = regexp.MustCompile(`^[0-9a-f]{32}\.(png|jpg|webp|gif)$`)

// imageType is the stored content type of data declared as contentType: the declared type
// when it is one the store names (parameters dropped), else what the bytes look like, else PNG.
func imageType(data []byte, contentType string) string {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		if _, ok := extOf[mt]; ok {
			return mt
		}
	}
	if mt, _, _ := strings.Cut(http.DetectContentType(data), ";"); extOf[mt] != "" {
		return mt
	}
	return "image/png"
}

// Put stores an image and returns its name (the last path element of its URL).
func (s *Store) Put(ctx context.Context, data []byte, contentType string) (string, error) {
	ct := imageType(data, contentType)
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	name := hex.EncodeToString(b[:]) + extOf[ct]
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.b.Put(ctx, name, data, ct, s.now().Add(s.ttl)); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", fmt.Errorf("imagestore: the store did not take the image within %s: %w", s.timeout, err)
		}
		return "", err
	}
	return name, nil
}

// Link returns the URL a client fetches the image name from: base (the gateway's image route,
// ending in "/") followed by the name, or a presigned object-store URL when the store presigns.
func (s *Store) Link(ctx context.Context, name, base string) (string, error) {
	if s.presign {
		if p, ok := s.b.(Presigner); ok {
			return p.Presign(ctx, name, min(s.ttl, maxPresign))
		}
	}
	return base + name, nil
}

// ServeHTTP serves GET and HEAD …/{name}: the last path element names the image. Any replica
// serves any image its backend holds: bytes are streamed from the backend, never held whole.
// HEAD answers the same headers as GET (Content-Type, Content-Length, Last-Modified, caching)
// without the bytes; an unknown or expired name is a 404, a backend that fails a 503; other
// methods are a 405.
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
	// The backend must start answering within the timeout, and then never pause longer.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stall := time.AfterFunc(s.timeout, cancel)
	defer stall.Stop()
	obj, err := s.b.Get(ctx, name, r.Method == http.MethodHead)
	stall.Stop()
	switch {
	case errors.Is(err, ErrNotFound):
		http.NotFound(w, r)
		return
	case err != nil:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "image storage unavailable", http.StatusServiceUnavailable)
		return
	}
	if obj.Body != nil {
		defer obj.Body.Close()
	}
	if !obj.Expires.IsZero() && s.now().After(obj.Expires) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	ct := obj.ContentType
	if _, ok := extOf[ct]; !ok {
		ct = typeOf[name[strings.LastIndexByte(name, '.'):]]
	}
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", fmt.Sprintf("private, max-age=%d, immutable", int(s.ttl.Seconds())))
	h.Set("X-Content-Type-Options", "nosniff")
	if rs, ok := obj.Body.(io.ReadSeeker); ok {
		http.ServeContent(w, r, name, obj.ModTime, rs)
		return
	}
	if !obj.ModTime.IsZero() {
		if ims, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !obj.ModTime.Truncate(time.Second).After(ims) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Last-Modified", obj.ModTime.UTC().Format(http.TimeFormat))
	}
	if obj.Size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead || obj.Body == nil {
		return
	}
	// A client gone or a backend failing (or pausing past the timeout) mid-body ends the response
	// short; nothing to add. Only the backend's reads are timed: a slow client is the server's
	// write timeout's business.
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	for {
		stall.Reset(s.timeout)
		n, err := obj.Body.Read(*buf)
		stall.Stop()
		if n > 0 {
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Sweep deletes expired images and returns how many.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	return s.b.Sweep(ctx, s.now())
}

// Close releases the backend's resources (idle connections).
func (s *Store) Close() error {
	if c, ok := s.b.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
