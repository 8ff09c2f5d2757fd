package imaging

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"testing"
)

// fuzzMaxPixels keeps fuzzed decodes small and fast.
const fuzzMaxPixels = 1 << 16

// seeds returns small valid images of every format, plus headers that stress the checks.
func seeds(t testing.TB) [][]byte {
	hole := solid(6, 5, opaqueWhite)
	hole.SetNRGBA(2, 2, clear)
	pal := image.NewPaletted(image.Rect(0, 0, 6, 5), color.Palette{color.NRGBA{}, color.NRGBA{0, 0, 0, 255}})
	pal.SetColorIndex(1, 1, 1)
	gray := image.NewGray(image.Rect(0, 0, 6, 5))
	gray.Pix[3] = 255
	return [][]byte{
		encPNG(t, hole),
		encPNG(t, gray),
		encPNG(t, image.NewRGBA64(image.Rect(0, 0, 6, 5))),
		encPNG(t, pal),
		encJPEG(t, hole),
		encJPEG(t, gray),
		encGIF(t, &gif.GIF{Image: []*image.Paletted{pal}, Delay: []int{0}}),
		readFile(t, "blue-purple-pink.lossy.webp"),
		readFile(t, "blue-purple-pink.lossless.webp"),
		bombPNG(100000, 100000),
		bombJPEG(65500, 65500),
		bombGIF(65535, 65535),
		bombWebP(40000, 40000),
		[]byte("\x89PNG\r\n\x1a\n"),
		[]byte("RIFF\x00\x00\x00\x00WEBPVP8L"),
	}
}

func checkErr(t *testing.T, err error, allowed ...error) {
	t.Helper()
	for _, a := range allowed {
		if errors.Is(err, a) {
			return
		}
	}
	t.Fatalf("untyped error: %v", err)
}

func FuzzInspect(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Inspect(data, fuzzMaxPixels)
		if err != nil {
			checkErr(t, err, ErrNotImage, ErrTooManyPixels)
			return
		}
		if info.Width <= 0 || info.Height <= 0 || info.Pixels() > fuzzMaxPixels || info.ContentType == "" {
			t.Fatalf("accepted %+v", info)
		}
		img, dinfo, err := Decode(data, fuzzMaxPixels)
		if err != nil {
			checkErr(t, err, ErrNotImage)
			return
		}
		if dinfo != info || img.Bounds() != image.Rect(0, 0, info.Width, info.Height) {
			t.Fatalf("Decode gave %v %+v, Inspect %+v", img.Bounds(), dinfo, info)
		}
	})
}

func fuzzMask(t *testing.T, data []byte, w, h uint8, convert func([]byte, int, int, int) ([]byte, int, error)) {
	width, height := int(w%64)+1, int(h%64)+1
	if info, err := Inspect(data, fuzzMaxPixels); err == nil {
		if w%2 == 0 { // half the time, the mask's own size, so conversion really runs
			width, height = info.Width, info.Height
		}
	}
	out, edit, err := convert(data, width, height, fuzzMaxPixels)
	if err != nil {
		checkErr(t, err, ErrNotImage, ErrTooManyPixels, ErrMaskSize, ErrMaskEmpty)
		return
	}
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("output is not a PNG: %v", err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Bounds() != image.Rect(0, 0, width, height) {
		t.Fatalf("output is %T %v, want %dx%d gray", img, img.Bounds(), width, height)
	}
	black := 0
	for _, v := range g.Pix {
		switch v {
		case 0:
			black++
		case 255:
		default:
			t.Fatalf("output holds gray %d", v)
		}
	}
	if black == 0 || black != edit {
		t.Fatalf("%d black pixels, edit %d", black, edit)
	}
}

func FuzzMaskToBlackWhite(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s, uint8(6), uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, w, h uint8) { fuzzMask(t, data, w, h, MaskToBlackWhite) })
}

func FuzzNormalizeBlackWhiteMask(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s, uint8(6), uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, w, h uint8) { fuzzMask(t, data, w, h, NormalizeBlackWhiteMask) })
}
