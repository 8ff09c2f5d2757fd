package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/png"
	"runtime"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	pal := &gif.GIF{Image: []*image.Paletted{image.NewPaletted(image.Rect(0, 0, 7, 5), palette.Plan9)}, Delay: []int{0}}
	cases := []struct {
		name   string
		data   []byte
		format string
		ct     string
		w, h   int
	}{
		{"png", encPNG(t, solid(40, 30, opaqueWhite)), "png", "image/png", 40, 30},
		{"png gray16", encPNG(t, image.NewGray16(image.Rect(0, 0, 3, 9))), "png", "image/png", 3, 9},
		{"jpeg", encJPEG(t, solid(17, 23, opaqueBlack)), "jpeg", "image/jpeg", 17, 23},
		{"jpeg gray", encJPEG(t, image.NewGray(image.Rect(0, 0, 8, 8))), "jpeg", "image/jpeg", 8, 8},
		{"gif", encGIF(t, pal), "gif", "image/gif", 7, 5},
		{"webp lossy", readFile(t, "blue-purple-pink.lossy.webp"), "webp", "image/webp", 0, 0},
		{"webp lossless", readFile(t, "blue-purple-pink.lossless.webp"), "webp", "image/webp", 0, 0},
		{"webp alpha", readFile(t, "yellow_rose.lossy-with-alpha.webp"), "webp", "image/webp", 0, 0},
	}
	for _, tc := range cases {
		info, err := Inspect(tc.data, 0)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if info.Format != tc.format || info.ContentType != tc.ct || (tc.w != 0 && (info.Width != tc.w || info.Height != tc.h)) {
			t.Errorf("%s: %+v", tc.name, info)
		}
		img, dinfo, err := Decode(tc.data, 0)
		if err != nil || dinfo != info || img.Bounds() != image.Rect(0, 0, info.Width, info.Height) {
			t.Errorf("%s: Decode = %v, %+v, %v", tc.name, img.Bounds(), dinfo, err)
		}
	}
}

func TestInspectRejects(t *testing.T) {
	png := encPNG(t, solid(4, 4, opaqueWhite))
	cases := map[string][]byte{
		"empty":           nil,
		"text":            []byte("hello, world"),
		"html":            []byte("<!doctype html><html></html>"),
		"bmp":             []byte("BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00"),
		"png magic only":  png[:8],
		"png truncated":   png[:20],
		"png bad crc":     append(append(append([]byte{}, png[:29]...), 0, 0, 0, 0), png[33:]...),
		"png zero width":  bombPNG(0, 10),
		"jpeg magic only": {0xff, 0xd8, 0xff},
		"gif magic only":  []byte("GIF89a"),
		"riff not webp":   []byte("RIFF\x04\x00\x00\x00WAVEfmt "),
		"webp truncated":  readFile(t, "blue-purple-pink.lossy.webp")[:20],
	}
	for name, data := range cases {
		if _, err := Inspect(data, 0); !errors.Is(err, ErrNotImage) {
			t.Errorf("%s: Inspect = %v, want ErrNotImage", name, err)
		}
	}
	// A header that is fine with a body that is not: Inspect passes, Decode refuses.
	corrupt := append(append([]byte{}, png[:len(png)-20]...), make([]byte, 20)...)
	if _, err := Inspect(corrupt, 0); err != nil {
		t.Fatalf("Inspect of a corrupt body: %v", err)
	}
	if _, _, err := Decode(corrupt, 0); !errors.Is(err, ErrNotImage) {
		t.Errorf("Decode of a corrupt body = %v, want ErrNotImage", err)
	}
}

func TestPixelCap(t *testing.T) {
	data := encPNG(t, solid(100, 50, opaqueWhite)) // 5000 pixels
	if _, err := Inspect(data, 5000); err != nil {
		t.Errorf("exactly at the cap: %v", err)
	}
	_, err := Inspect(data, 4999)
	if !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("one pixel over: %v, want ErrTooManyPixels", err)
	}
	for _, want := range []string{"100x50", "5000 pixels", "4999"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %s", err, want)
		}
	}
	if _, _, err := Decode(data, 4999); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("Decode: %v, want ErrTooManyPixels", err)
	}
}

// allocated reports how many bytes fn allocated on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecompressionBombs(t *testing.T) {
	bombs := map[string][]byte{
		"png 100000x100000": bombPNG(100000, 100000),
		"png 65536x65536":   bombPNG(65536, 65536),
		"png 1x100000000":   bombPNG(1, 100000000),
		"jpeg 65500x65500":  bombJPEG(65500, 65500),
		"gif 65535x65535":   bombGIF(65535, 65535),
		"webp 40000x40000":  bombWebP(40000, 40000),
	}
	for name, data := range bombs {
		var err1, err2 error
		n := allocated(func() {
			_, err1 = Inspect(data, DefaultMaxPixels)
			_, _, err2 = Decode(data, DefaultMaxPixels)
		})
		if !errors.Is(err1, ErrTooManyPixels) || !errors.Is(err2, ErrTooManyPixels) {
			t.Errorf("%s (%d bytes): Inspect = %v, Decode = %v; want ErrTooManyPixels", name, len(data), err1, err2)
		}
		if n > 256<<10 {
			t.Errorf("%s: refusing it allocated %d bytes", name, n)
		}
	}
	// Dimensions whose product overflows are refused by the PNG decoder itself.
	if _, err := Inspect(bombPNG(1<<31-1, 1<<31-1), 0); !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("png 2^31-1 squared: %v", err)
	}
	// The PNG bomb is well-formed apart from its size: under a big enough cap the header passes.
	if _, err := Inspect(bombPNG(100000, 100000), 100000*100000); err != nil {
		t.Errorf("the PNG bomb's header is not well-formed: %v", err)
	}
}

func TestDecodeGIFFramePlacement(t *testing.T) {
	// A 2×2 first frame at (3,1) on a 6×4 screen: the rest of the screen is transparent.
	frame := image.NewPaletted(image.Rect(3, 1, 5, 3), color.Palette{color.NRGBA{255, 0, 0, 255}, color.NRGBA{}})
	data := encGIF(t, &gif.GIF{Image: []*image.Paletted{frame}, Delay: []int{0},
		Config: image.Config{ColorModel: frame.Palette, Width: 6, Height: 4}})
	img, info, err := Decode(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 6 || info.Height != 4 || img.Bounds() != image.Rect(0, 0, 6, 4) {
		t.Fatalf("info %+v, bounds %v", info, img.Bounds())
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Error("outside the frame is not transparent")
	}
	if r, _, _, a := img.At(3, 1).RGBA(); r != 0xffff || a != 0xffff {
		t.Error("the frame was not placed")
	}
}

func TestSniffIgnoresRegisteredFormats(t *testing.T) {
	// Whatever else package image knows, only the four formats are accepted.
	if f := sniff([]byte("BM6\x00\x00\x00\x00\x00\x00\x006\x00\x00\x00(\x00")); f != nil {
		t.Errorf("BMP sniffed as %s", f.name)
	}
	if f := sniff([]byte("II*\x00\x08\x00\x00\x00")); f != nil {
		t.Errorf("TIFF sniffed as %s", f.name)
	}
}

// TestPNGSizeAgreesWithTheDecoder: decodeSize accepts exactly the headers png.DecodeConfig accepts,
// with the same dimensions: PNGs of every colour type and bit depth the encoder writes,
// interlaced ones, and every value of every byte of the signature and IHDR of each (a wrong byte
// there is a wrong signature, length, type, dimension, depth, method or CRC). CRCs are recomputed
// for the flips inside the chunk's data, so that the checks behind the CRC are reached.
func TestPNGSizeAgreesWithTheDecoder(t *testing.T) {
	r := image.Rect(0, 0, 3, 2)
	pal := color.Palette{color.Black, color.White}
	var pngs [][]byte
	for _, img := range []image.Image{image.NewGray(r), image.NewGray16(r), image.NewRGBA(r), image.NewRGBA64(r),
		image.NewNRGBA(r), image.NewPaletted(r, pal), image.NewPaletted(r, palette.Plan9)} {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		pngs = append(pngs, b.Bytes())
	}
	// Greyscale with alpha, and an interlaced one, which the encoder never writes: patched in.
	for _, patch := range []struct{ at, v byte }{{25, 4}, {28, 1}} {
		p := bytes.Clone(pngs[2]) // RGBA: 8-bit truecolour with alpha
		p[patch.at] = patch.v
		binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
		pngs = append(pngs, p)
	}
	agree := func(p []byte, what string) {
		t.Helper()
		w, h, err := decodeSize(fmtPNG, p)
		cfg, derr := png.DecodeConfig(bytes.NewReader(p))
		if (err == nil) != (derr == nil) || err == nil && (w != cfg.Width || h != cfg.Height) {
			t.Fatalf("%s: decodeSize %dx%d, %v; png.DecodeConfig %dx%d, %v", what, w, h, err, cfg.Width, cfg.Height, derr)
		}
	}
	for i, p := range pngs {
		agree(p, fmt.Sprintf("png %d", i))
		for at := range 33 {
			for v := range 256 {
				q := bytes.Clone(p)
				q[at] = byte(v)
				if at >= 16 && at < 29 {
					binary.BigEndian.PutUint32(q[29:], crc32.ChecksumIEEE(q[12:29]))
				}
				agree(q, fmt.Sprintf("png %d, byte %d = %#x", i, at, v))
			}
		}
		agree(p[:32], fmt.Sprintf("png %d cut inside its IHDR", i))
	}
}
