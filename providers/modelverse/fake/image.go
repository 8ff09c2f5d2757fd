package fake

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers/internal/arkwire/arkfake"
)

// render draws a deterministic grey pattern for seed at w×h and encodes it as PNG.
func render(seed int64, w, h int) []byte {
	if seed < 0 {
		seed = -seed
	}
	a, b, c := int(1+seed%5), int(1+(seed/5)%7), int(seed%241)
	return arkfake.PNG(arkfake.Grey(w, h, b, c, func(x int, k uint8) uint8 { return uint8(x*a/4) ^ k }), w, h)
}

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
	if !ok {
		return imageRef{}, false
	}
	seed, w, h, ok := arkfake.ParseImageName(base)
	if !ok {
		return imageRef{}, false
	}
	return imageRef{Seed: seed, W: w, H: h}, true
}

// imageURL returns the signed URL of an image, valid for the fake's URL lifetime from now.
func (f *Fake) imageURL(base string, ref imageRef, now time.Time) string {
	p := "/image/" + arkfake.ImageName(ref.Seed, ref.W, ref.H, f.srv.NextSeq()) + ".png"
	exp := strconv.FormatInt(now.Add(f.srv.TTL()).Unix(), 10)
	return base + p + "?Expires=" + exp + "&Signature=" + f.srv.Sign(p, exp)
}

// serveImage answers GET on an image URL: the PNG while the signature holds and the URL has not
// expired, 403 otherwise.
func (f *Fake) serveImage(w http.ResponseWriter, r *http.Request) {
	arkfake.ServeImage(w, r, func() ([]byte, string, bool) {
		ref, ok := parseImagePath(r.URL.Path)
		if !ok {
			http.Error(w, "image not found", http.StatusNotFound)
			return nil, "", false
		}
		q := r.URL.Query()
		exp, sig := q.Get("Expires"), q.Get("Signature")
		if !f.srv.Verify(sig, r.URL.Path, exp) {
			http.Error(w, "signature does not match", http.StatusForbidden)
			return nil, "", false
		}
		secs, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || !f.srv.Now().Before(time.Unix(secs, 0)) {
			http.Error(w, "the link has expired", http.StatusForbidden)
			return nil, "", false
		}
		return render(ref.Seed, ref.W, ref.H), "image/png", true
	})
}
