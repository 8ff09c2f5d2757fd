package sffake

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	_ "image/jpeg" // decode the config of JPEG reference images
	"image/png"
	"strings"
	"sync"
)

// pngCache keeps the last few rendered images, so load tests that download every URL do not
// re-encode the same picture.
type pngCache struct {
	mu      sync.Mutex
	entries []pngEntry
}

type pngEntry struct {
	key  pngKey
	data []byte
}

type pngKey struct {
	w, h int
	seed int64
	idx  int
}

const pngCacheSize = 16

func (c *pngCache) get(w, h int, seed int64, idx int) []byte {
	k := pngKey{w, h, seed, idx}
	c.mu.Lock()
	for _, e := range c.entries {
		if e.key == k {
			c.mu.Unlock()
			return e.data
		}
	}
	c.mu.Unlock()
	b := RenderPNG(w, h, seed, idx)
	c.mu.Lock()
	if len(c.entries) >= pngCacheSize {
		c.entries = c.entries[1:]
	}
	c.entries = append(c.entries, pngEntry{k, b})
	c.mu.Unlock()
	return b
}

// splitmix64 is a tiny deterministic mixer for colours and patterns.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// RenderPNG draws a w×h two-colour striped PNG whose colours and stripe width depend only on seed
// and idx, so equal inputs give byte-identical images.
func RenderPNG(w, h int, seed int64, idx int) []byte {
	r := splitmix64(uint64(seed)*31 + uint64(idx))
	c1 := color.RGBA{uint8(r), uint8(r >> 8), uint8(r >> 16), 255}
	c2 := color.RGBA{^c1.R, ^c1.G, ^c1.B, 255}
	stripe := 8 + int(r>>24)%56
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{c1, c2})
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+w]
		for x := range row {
			row[x] = uint8(((x + y) / stripe) & 1)
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		panic(err) // encoding to memory cannot fail
	}
	return buf.Bytes()
}

// imageSize reads the dimensions of a data:image/...;base64 reference image (PNG or JPEG).
func imageSize(v string) (int, int, bool) {
	rest, ok := strings.CutPrefix(v, "data:")
	if !ok {
		return 0, 0, false
	}
	_, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return 0, 0, false
	}
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return 0, 0, false
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, false
	}
	return cfg.Width, cfg.Height, true
}
