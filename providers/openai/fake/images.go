package fake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// look is what an image shows: a checkerboard of two colours derived from what was asked.
type look struct {
	w, h        int
	c1, c2      uint32 // 0xRRGGBB
	transparent bool   // c2 squares are fully transparent
}

// lookFor derives a deterministic look from the request's inputs: the same model, prompt, seed
// and index always give the same picture.
func lookFor(w, h int, transparent bool, parts ...string) look {
	hf := fnv.New64a()
	for _, p := range parts {
		_, _ = hf.Write([]byte(p))
		_, _ = hf.Write([]byte{0})
	}
	s := hf.Sum64()
	return look{w: w, h: h, c1: uint32(s) & 0xffffff, c2: uint32(s>>24) & 0xffffff, transparent: transparent}
}

func rgba(c uint32, a uint8) color.NRGBA {
	return color.NRGBA{R: uint8(c >> 16), G: uint8(c >> 8), B: uint8(c), A: a}
}

// imageCache keeps recently encoded images: encoding a 1792x1024 PNG or JPEG is the fake's most
// expensive step, and tests ask for the same few looks again and again.
type imageCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *imageCache) get(format string, l look, quality int, render func() ([]byte, error)) ([]byte, error) {
	key := fmt.Sprintf("%s/%d/%+v", format, quality, l)
	c.mu.Lock()
	b, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := render()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= 64 {
		c.m = map[string][]byte{}
	}
	c.m[key] = b
	c.mu.Unlock()
	return b, nil
}

// encode renders l as png, jpeg or webp. quality is the JPEG quality (1–100).
func (c *imageCache) encode(format string, l look, quality int) ([]byte, error) {
	return c.get(format, l, quality, func() ([]byte, error) {
		var buf bytes.Buffer
		switch format {
		case "jpeg":
			img := image.NewRGBA(image.Rect(0, 0, l.w, l.h))
			a, b := rgba(l.c1, 255), rgba(l.c2, 255)
			for y := 0; y < l.h; y++ {
				row := img.Pix[y*img.Stride : y*img.Stride+4*l.w]
				for x := 0; x < l.w; x++ {
					c := a
					if (x/64+y/64)%2 == 1 {
						c = b
					}
					row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = c.R, c.G, c.B, 255
				}
			}
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: max(1, min(quality, 100))}); err != nil {
				return nil, fmt.Errorf("fake: encode jpeg: %w", err)
			}
		case "webp":
			a := uint8(255)
			if l.transparent {
				a = 0
			}
			return encodeWebP(l.w, l.h, rgba(l.c1, a)), nil
		default:
			a2 := uint8(255)
			if l.transparent {
				a2 = 0
			}
			img := image.NewPaletted(image.Rect(0, 0, l.w, l.h), color.Palette{rgba(l.c1, 255), rgba(l.c2, a2)})
			for y := 0; y < l.h; y++ {
				row := img.Pix[y*img.Stride : y*img.Stride+l.w]
				for x := range row {
					row[x] = uint8((x/64 + y/64) % 2)
				}
			}
			if err := png.Encode(&buf, img); err != nil {
				return nil, fmt.Errorf("fake: encode png: %w", err)
			}
		}
		return buf.Bytes(), nil
	})
}

// encodeWebP writes a lossless WebP (VP8L) of one colour. Each of its five prefix codes has a
// single symbol, so every pixel takes zero bits: the whole file is a few dozen bytes whatever
// the size, and any WebP decoder reads it.
func encodeWebP(w, h int, c color.NRGBA) []byte {
	var bw bitWriter
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	alpha := uint32(0)
	if c.A != 255 {
		alpha = 1
	}
	bw.write(alpha, 1)
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	for _, sym := range []uint8{c.G, c.R, c.B, c.A} {
		bw.write(1, 1) // simple code
		bw.write(0, 1) // one symbol
		bw.write(1, 1) // 8-bit symbol
		bw.write(uint32(sym), 8)
	}
	bw.write(1, 1) // distance code: simple,
	bw.write(0, 1) // one symbol,
	bw.write(0, 1) // 1-bit symbol
	bw.write(0, 1) // 0
	data := append([]byte{0x2f}, bw.bytes()...)
	n := len(data)
	if n%2 == 1 {
		data = append(data, 0) // RIFF chunks are padded to even sizes
	}
	out := make([]byte, 0, 20+len(data))
	out = append(out, "RIFF"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(4+8+len(data)))
	out = append(out, "WEBPVP8L"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(n)) // unpadded size
	return append(out, data...)
}

// bitWriter packs bits least-significant first, as VP8L reads them.
type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

func (b *bitWriter) write(v uint32, n uint) {
	b.acc |= uint64(v) << b.nbits
	b.nbits += n
	for b.nbits >= 8 {
		b.buf = append(b.buf, byte(b.acc))
		b.acc >>= 8
		b.nbits -= 8
	}
}

func (b *bitWriter) bytes() []byte {
	if b.nbits > 0 {
		return append(b.buf, byte(b.acc))
	}
	return b.buf
}

// signedURL builds the URL where the fake serves an image: a path naming the look, and a signed
// query (start, expiry, permissions, signature: several '&') that stops working after ttl.
func (f *Fake) signedURL(base string, l look, now time.Time) string {
	transparent := 0
	if l.transparent {
		transparent = 1
	}
	path := fmt.Sprintf("%s/img-%dx%d-%06x-%06x-%d-%d.png", f.imagePrefix, l.w, l.h, l.c1, l.c2, transparent, f.ids.Add(1))
	st := now.UTC().Add(-5 * time.Minute).Format(time.RFC3339)
	se := now.UTC().Add(f.ttl).Format(time.RFC3339)
	q := url.Values{}
	q.Set("st", st)
	q.Set("se", se)
	q.Set("sp", "r")
	q.Set("sv", "2021-08-06")
	q.Set("sr", "b")
	q.Set("rscd", "inline")
	q.Set("rsct", "image/png")
	q.Set("sig", f.sign(path, st, se))
	return strings.TrimRight(base, "/") + path + "?" + q.Encode()
}

func (f *Fake) sign(path, st, se string) string {
	m := hmac.New(sha256.New, f.secret)
	_, _ = m.Write([]byte(path + "\n" + st + "\n" + se))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// serveImage answers GET on an image URL: the PNG while the signature holds and has not
// expired, else 403 with a storage-style XML error (as Azure Blob Storage, where dall-e's URLs
// point, answers).
func (f *Fake) serveImage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		blobError(w, http.StatusMethodNotAllowed, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.")
		return
	}
	q := r.URL.Query()
	st, se, sig := q.Get("st"), q.Get("se"), q.Get("sig")
	if sig == "" || !hmac.Equal([]byte(sig), []byte(f.sign(r.URL.Path, st, se))) {
		blobError(w, http.StatusForbidden, "AuthenticationFailed",
			"Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.")
		return
	}
	exp, err := time.Parse(time.RFC3339, se)
	if err != nil || !f.now().Before(exp) {
		blobError(w, http.StatusForbidden, "AuthenticationFailed",
			"Server failed to authenticate the request. Signed expiry time ["+se+"] must be after signed start time ["+st+"].")
		return
	}
	var l look
	var transparent, id int
	name := strings.TrimPrefix(r.URL.Path, f.imagePrefix+"/")
	if _, err := fmt.Sscanf(name, "img-%dx%d-%06x-%06x-%d-%d.png", &l.w, &l.h, &l.c1, &l.c2, &transparent, &id); err != nil {
		blobError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	l.transparent = transparent == 1
	b, err := f.images.encode("png", l, 0)
	if err != nil {
		blobError(w, http.StatusInternalServerError, "InternalError", "The server encountered an internal error.")
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}

func blobError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}
