package fake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// render draws a deterministic grey pattern for seed at w×h and encodes it as PNG. Rows repeat
// with a period of at most 256, so each distinct row is computed once and copied, and the image
// is paletted, which the PNG encoder does not filter: large sizes stay cheap.
func render(seed int64, w, h int) []byte {
	if seed < 0 {
		seed = -seed
	}
	a, b, c := int(1+seed%5), int(1+(seed/5)%7), int(seed%241)
	pix := make([]uint8, w*h)
	rows := map[uint8][]uint8{}
	for y := 0; y < h; y++ {
		k := uint8(y*b/4 + c)
		row, ok := rows[k]
		if !ok {
			row = make([]uint8, w)
			for x := range row {
				row[x] = uint8(x*a/4) ^ k
			}
			rows[k] = row
		}
		copy(pix[y*w:(y+1)*w], row)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	_ = enc.Encode(&buf, &image.Paletted{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h), Palette: greys})
	return buf.Bytes()
}

// greys is a palette of the 256 grey levels.
var greys = func() color.Palette {
	p := make(color.Palette, 256)
	for i := range p {
		p[i] = color.Gray{Y: uint8(i)}
	}
	return p
}()

// imageRef is what an image URL encodes.
type imageRef struct {
	Seed int64
	W, H int
}

// parseImagePath reads /image/<seed>_<w>x<h>_<n>.png.
func parseImagePath(p string) (imageRef, bool) {
	name, ok := strings.CutPrefix(p, "/image/")
	if !ok {
		return imageRef{}, false
	}
	base, ok := strings.CutSuffix(name, ".png")
	parts := strings.Split(base, "_")
	if !ok || len(parts) != 3 {
		return imageRef{}, false
	}
	seed, err1 := strconv.ParseInt(parts[0], 10, 64)
	ws, hs, ok := strings.Cut(parts[1], "x")
	w, err2 := strconv.Atoi(ws)
	h, err3 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || err3 != nil || w <= 0 || h <= 0 || w > 8192 || h > 8192 {
		return imageRef{}, false
	}
	return imageRef{Seed: seed, W: w, H: h}, true
}

// sign is the signature of an image path and its expiry.
func (f *Fake) sign(path, expires string) string {
	m := hmac.New(sha256.New, f.secret)
	m.Write([]byte(path + "\n" + expires))
	return hex.EncodeToString(m.Sum(nil))
}

// imageURL returns the signed URL of an image, valid for the fake's URL lifetime from now.
func (f *Fake) imageURL(base string, ref imageRef, now time.Time) string {
	p := fmt.Sprintf("/image/%d_%dx%d_%d.png", ref.Seed, ref.W, ref.H, f.seq.Add(1))
	exp := strconv.FormatInt(now.Add(f.ttl).Unix(), 10)
	return base + p + "?Expires=" + exp + "&Signature=" + f.sign(p, exp)
}

// serveImage answers GET on an image URL: the PNG while the signature holds and the URL has not
// expired, 403 otherwise.
func (f *Fake) serveImage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ref, ok := parseImagePath(r.URL.Path)
	if !ok {
		http.Error(w, "image not found", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	exp, sig := q.Get("Expires"), q.Get("Signature")
	if !hmac.Equal([]byte(sig), []byte(f.sign(r.URL.Path, exp))) {
		http.Error(w, "signature does not match", http.StatusForbidden)
		return
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !f.now().Before(time.Unix(secs, 0)) {
		http.Error(w, "the link has expired", http.StatusForbidden)
		return
	}
	body := render(ref.Seed, ref.W, ref.H)
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
