package fake

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers/internal/arkwire/arkfake"
)

// render draws a deterministic grey pattern for seed at w×h and encodes it as JPEG or PNG.
func render(seed int64, w, h int, format string) []byte {
	if seed < 0 {
		seed = -seed
	}
	a, b, c := int(1+seed%7), int(1+(seed/7)%5), int(seed%251)
	pix := arkfake.Grey(w, h, b, c, func(x int, k uint8) uint8 { return uint8(x*a/4) + k })
	if format == "png" {
		return arkfake.PNG(pix, w, h)
	}
	return arkfake.JPEG(pix, w, h)
}

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
	return "/fake-tos/" + url.PathEscape(model) + "/" + arkfake.ImageName(ref.Seed, ref.W, ref.H, n) + "." + ref.Format
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
	seed, w, h, ok := arkfake.ParseImageName(base)
	if !ok {
		return imageRef{}, false
	}
	return imageRef{Seed: seed, W: w, H: h, Format: format}, true
}

// imageURL returns the signed URL of an image, valid for the fake's URL lifetime from now.
func (f *Fake) imageURL(base, model string, ref imageRef, now time.Time) string {
	p := imagePath(model, ref, f.srv.NextSeq())
	date := now.UTC().Format(tosDate)
	exp := strconv.FormatInt(int64(f.srv.TTL()/time.Second), 10)
	q := "X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Date=" + date + "&X-Tos-Expires=" + exp +
		"&X-Tos-SignedHeaders=host&X-Tos-Signature=" + f.srv.Sign(p, date, exp)
	return base + p + "?" + q
}

// serveImage answers GET on an image URL: the bytes while the signature holds and the URL has
// not expired, TOS-style 403 XML otherwise.
func (f *Fake) serveImage(w http.ResponseWriter, r *http.Request) {
	arkfake.ServeImage(w, r, func() ([]byte, string, bool) {
		ref, ok := parseImagePath(r.URL.Path)
		if !ok {
			tosError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return nil, "", false
		}
		q := r.URL.Query()
		date, exp, sig := q.Get("X-Tos-Date"), q.Get("X-Tos-Expires"), q.Get("X-Tos-Signature")
		if !f.srv.Verify(sig, r.URL.Path, date, exp) {
			tosError(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
			return nil, "", false
		}
		issued, err := time.Parse(tosDate, date)
		secs, err2 := strconv.ParseInt(exp, 10, 64)
		if err != nil || err2 != nil {
			tosError(w, http.StatusForbidden, "AccessDenied", "Invalid signed query.")
			return nil, "", false
		}
		if !f.srv.Now().Before(issued.Add(time.Duration(secs) * time.Second)) {
			tosError(w, http.StatusForbidden, "AccessDenied", "Request has expired")
			return nil, "", false
		}
		return render(ref.Seed, ref.W, ref.H, ref.Format), "image/" + ref.Format, true
	})
}

// tosError writes an object-storage style XML error.
func tosError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>\n", code, msg)
}
