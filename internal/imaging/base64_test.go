package imaging

import (
	"encoding/base64"
	"errors"
	"image"
	"image/color/palette"
	"image/gif"
	"testing"
)

// withAPP puts n bytes of APP1 segments (up to 65,533 bytes each) right after a JPEG's SOI, so
// its frame header lies n bytes further.
func withAPP(jpeg []byte, n int) []byte {
	out := append([]byte{}, jpeg[:2]...)
	for n > 0 {
		k := min(n, 65533)
		out = append(out, 0xff, 0xe1, byte((k+2)>>8), byte(k+2))
		out = append(out, make([]byte, k)...)
		n -= k
	}
	return append(out, jpeg[2:]...)
}

func b64(data []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(data)) }

// TestInspectBase64 checks that inspecting the base64 text says what inspecting the bytes says,
// wherever the header lies.
func TestInspectBase64(t *testing.T) {
	pal := &gif.GIF{Image: []*image.Paletted{image.NewPaletted(image.Rect(0, 0, 7, 5), palette.Plan9)}, Delay: []int{0}}
	jpg := encJPEG(t, solid(17, 23, opaqueBlack))
	png := encPNG(t, solid(4, 4, opaqueWhite))
	cases := map[string][]byte{
		"png":               encPNG(t, photo1024()),
		"png, paletted":     encPNG(t, pal.Image[0]), // the palette lies past the first head
		"jpeg":              jpg,
		"jpeg, header 10K":  withAPP(jpg, 10<<10),
		"jpeg, header 200K": withAPP(jpg, 200<<10),
		"gif":               encGIF(t, pal),
		"webp":              readFile(t, "yellow_rose.lossy-with-alpha.webp"),
		"webp, lossless":    readFile(t, "blue-purple-pink.lossless.webp"),
		"webp, lossy":       readFile(t, "blue-purple-pink.lossy.webp"),
		"png bomb":          bombPNG(100000, 100000),
		"jpeg bomb":         bombJPEG(65500, 65500),
		"jpeg bomb, far":    withAPP(bombJPEG(65500, 65500), 300<<10),
		"webp bomb":         bombWebP(40000, 40000),
		"text":              []byte("hello, world"),
		"png truncated":     png[:20],
		"jpeg truncated":    withAPP(jpg, 10<<10)[:9<<10],
		"empty":             nil,
	}
	for name, data := range cases {
		want, werr := Inspect(data, 0)
		got, gerr := InspectBase64(b64(data), 0)
		if got != want || (werr == nil) != (gerr == nil) || werr != nil &&
			(errors.Is(werr, ErrTooManyPixels) != errors.Is(gerr, ErrTooManyPixels) || errors.Is(werr, ErrNotImage) != errors.Is(gerr, ErrNotImage)) {
			t.Errorf("%s: InspectBase64 = %+v, %v; Inspect = %+v, %v", name, got, gerr, want, werr)
		}
	}
	if _, err := InspectBase64([]byte("iVBO*w0KGgo="), 0); !errors.Is(err, ErrNotImage) {
		t.Errorf("bad base64: %v", err)
	}
}

// TestInspectBase64DecodesTheHead checks that a 2 MB image's header is read from its first few
// KB: refusing a bomb or passing an image allocates nothing near the image's size.
func TestInspectBase64DecodesTheHead(t *testing.T) {
	big := b64(append(encPNG(t, photo1024()), make([]byte, 2<<20)...))
	bomb := b64(append(bombPNG(100000, 100000), make([]byte, 2<<20)...))
	n := allocated(func() {
		if _, err := InspectBase64(big, 0); err != nil {
			t.Error(err)
		}
		if _, err := InspectBase64(bomb, 0); !errors.Is(err, ErrTooManyPixels) {
			t.Error(err)
		}
	})
	if n > 64<<10 {
		t.Errorf("inspecting allocated %d bytes", n)
	}
}

func BenchmarkInspectBase64PNG2MB(b *testing.B) {
	text := b64(append(encPNG(b, photo1024()), make([]byte, 2<<20)...))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := InspectBase64(text, 0); err != nil {
			b.Fatal(err)
		}
	}
}
