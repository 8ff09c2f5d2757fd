package fake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// render draws a deterministic grey pattern for seed at w×h and encodes it as JPEG or PNG.
// Grey keeps large sizes (4096×4096) cheap: rows repeat with a period of at most 256, so each
// distinct row is computed once and copied, and the PNG is paletted, which the encoder does not
// filter.
func render(seed int64, w, h int, format string) []byte {
	if seed < 0 {
		seed = -seed
	}
	a, b, c := int(1+seed%7), int(1+(seed/7)%5), int(seed%251)
	pix := make([]uint8, w*h)
	rows := map[uint8][]uint8{}
	for y := 0; y < h; y++ {
		k := uint8(y*b/4 + c)
		row, ok := rows[k]
		if !ok {
			row = make([]uint8, w)
			for x := range row {
				row[x] = uint8(x*a/4) + k
			}
			rows[k] = row
		}
		copy(pix[y*w:(y+1)*w], row)
	}
	rect := image.Rect(0, 0, w, h)
	var buf bytes.Buffer
	if format == "png" {
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		_ = enc.Encode(&buf, &image.Paletted{Pix: pix, Stride: w, Rect: rect, Palette: greys})
	} else {
		_ = jpeg.Encode(&buf, &image.Gray{Pix: pix, Stride: w, Rect: rect}, &jpeg.Options{Quality: 80})
	}
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

// tosDate is the layout of X-Tos-Date.
const tosDate = "20060102T150405Z"

// imageRef is what an image URL encodes.
type imageRef struct {
	Seed   int64
	W, H   int
	Format string // "jpeg" or "png"
}

// imagePath is the fake's path for an image: /fake-tos/<model>/<seed>_<w>x<h>_<n>.<format>.
func imagePath(model string, ref imageRef, n uint64) string {
	return fmt.Sprintf("/fake-tos/%s/%d_%dx%d_%d.%s", url.PathEscape(model), ref.Seed, ref.W, ref.H, n, ref.Format)
}

// parseImagePath reads an image path back.
func parseImagePath(p string) (imageRef, bool) {
	rest, ok := strings.CutPrefix(p, "/fake-tos/")
	if !ok {
		return imageRef{}, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return imageRef{}, false
	}
	name := rest[i+1:]
	base, format, ok := strings.Cut(name, ".")
	if !ok || (format != "jpeg" && format != "png") {
		return imageRef{}, false
	}
	parts := strings.Split(base, "_")
	if len(parts) != 3 {
		return imageRef{}, false
	}
	seed, err1 := strconv.ParseInt(parts[0], 10, 64)
	ws, hs, ok := strings.Cut(parts[1], "x")
	w, err2 := strconv.Atoi(ws)
	h, err3 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || err3 != nil || w <= 0 || h <= 0 || w > 8192 || h > 8192 {
		return imageRef{}, false
	}
	return imageRef{Seed: seed, W: w, H: h, Format: format}, true
}

// sign is the signature of an image path, issue date and lifetime.
func (f *Fake) sign(path, date, expires string) string {
	m := hmac.New(sha256.New, f.secret)
	m.Write([]byte(path + "\n" + date + "\n" + expires))
	return hex.EncodeToString(m.Sum(nil))
}

// imageURL returns the signed URL of an image, valid for the fake's URL lifetime from now.
func (f *Fake) imageURL(base, model string, ref imageRef, now time.Time) string {
	p := imagePath(model, ref, f.seq.Add(1))
	date := now.UTC().Format(tosDate)
	exp := strconv.FormatInt(int64(f.ttl/time.Second), 10)
	q := "X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Date=" + date + "&X-Tos-Expires=" + exp +
		"&X-Tos-SignedHeaders=host&X-Tos-Signature=" + f.sign(p, date, exp)
	return base + p + "?" + q
}

// serveImage answers GET on an image URL: the bytes while the signature holds and the URL has
// not expired, TOS-style 403 XML otherwise.
func (f *Fake) serveImage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ref, ok := parseImagePath(r.URL.Path)
	if !ok {
		tosError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	q := r.URL.Query()
	date, exp, sig := q.Get("X-Tos-Date"), q.Get("X-Tos-Expires"), q.Get("X-Tos-Signature")
	if !hmac.Equal([]byte(sig), []byte(f.sign(r.URL.Path, date, exp))) {
		tosError(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	issued, err := time.Parse(tosDate, date)
	secs, err2 := strconv.ParseInt(exp, 10, 64)
	if err != nil || err2 != nil {
		tosError(w, http.StatusForbidden, "AccessDenied", "Invalid signed query.")
		return
	}
	if !f.now().Before(issued.Add(time.Duration(secs) * time.Second)) {
		tosError(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	body := render(ref.Seed, ref.W, ref.H, ref.Format)
	w.Header().Set("Content-Type", "image/"+ref.Format)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// tosError writes an object-storage style XML error.
func tosError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>\n", code, msg)
}
