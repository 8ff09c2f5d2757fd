package arkfake

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strconv"
	"strings"
)

// Grey returns the pixels of a w×h grey image whose row y is row(x, k) for k = y·b/4 + c
// (wrapping at 256). Rows therefore repeat with a period of at most 256: each distinct row is
// computed once and copied, which keeps large sizes (4096×4096) cheap.
func Grey(w, h, b, c int, row func(x int, k uint8) uint8) []uint8 {
	pix := make([]uint8, w*h)
	rows := map[uint8][]uint8{}
	for y := 0; y < h; y++ {
		k := uint8(y*b/4 + c)
		r, ok := rows[k]
		if !ok {
			r = make([]uint8, w)
			for x := range r {
				r[x] = row(x, k)
			}
			rows[k] = r
		}
		copy(pix[y*w:(y+1)*w], r)
	}
	return pix
}

// PNG encodes w×h grey pixels as a paletted PNG, which the encoder does not filter: fast at any
// size.
func PNG(pix []uint8, w, h int) []byte {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	_ = enc.Encode(&buf, &image.Paletted{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h), Palette: greys})
	return buf.Bytes()
}

// JPEG encodes w×h grey pixels as a JPEG of quality 80.
func JPEG(pix []uint8, w, h int) []byte {
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}, &jpeg.Options{Quality: 80})
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

// ImageName is the file name, without extension, under which a fake serves the n-th image it
// made: <seed>_<w>x<h>_<n>.
func ImageName(seed int64, w, h int, n uint64) string {
	return fmt.Sprintf("%d_%dx%d_%d", seed, w, h, n)
}

// ParseImageName reads an ImageName back. It refuses sides outside 1…8192; n is not read.
func ParseImageName(name string) (seed int64, w, h int, ok bool) {
	parts := strings.Split(name, "_")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	seed, err1 := strconv.ParseInt(parts[0], 10, 64)
	ws, hs, ok := strings.Cut(parts[1], "x")
	w, err2 := strconv.Atoi(ws)
	h, err3 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || err3 != nil || w <= 0 || h <= 0 || w > 8192 || h > 8192 {
		return 0, 0, 0, false
	}
	return seed, w, h, true
}
