package imaging

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"
)

// grayPixels decodes a mask produced by this package and returns its pixels, checking that it is
// a grayscale PNG of w×h holding only black and white.
func grayPixels(t *testing.T, data []byte, w, h int) []byte {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the mask is not a PNG: %v", err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("the mask decodes to %T, want *image.Gray", img)
	}
	if g.Bounds() != image.Rect(0, 0, w, h) {
		t.Fatalf("the mask is %v, want %dx%d", g.Bounds(), w, h)
	}
	for _, v := range g.Pix {
		if v != 0 && v != 255 {
			t.Fatalf("the mask holds gray %d", v)
		}
	}
	return g.Pix
}

func TestMaskToBlackWhite(t *testing.T) {
	m := solid(4, 3, opaqueWhite)
	m.SetNRGBA(1, 0, clear)
	m.SetNRGBA(2, 2, color.NRGBA{255, 0, 0, 0})    // transparent whatever its colour
	m.SetNRGBA(3, 2, color.NRGBA{0, 0, 0, 1})      // almost transparent is kept
	m.SetNRGBA(0, 1, color.NRGBA{10, 10, 10, 255}) // opaque black is kept
	out, edit, err := MaskToBlackWhite(encPNG(t, m), 4, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		255, 0, 255, 255,
		255, 255, 255, 255,
		255, 255, 0, 255,
	}
	if got := grayPixels(t, out, 4, 3); !bytes.Equal(got, want) || edit != 2 {
		t.Errorf("pixels %v (edit %d), want %v (edit 2)", got, edit, want)
	}
}

func TestMaskToBlackWhiteFormats(t *testing.T) {
	// A GIF with a transparent palette entry.
	p := image.NewPaletted(image.Rect(0, 0, 5, 5), color.Palette{color.NRGBA{0, 0, 0, 255}, color.NRGBA{}})
	p.SetColorIndex(2, 2, 1)
	p.SetColorIndex(4, 4, 1)
	gifMask := encGIF(t, &gif.GIF{Image: []*image.Paletted{p}, Delay: []int{0}})

	// A 16-bit PNG.
	m64 := image.NewNRGBA64(image.Rect(0, 0, 5, 5))
	for i := range m64.Pix {
		m64.Pix[i] = 0xff
	}
	m64.SetNRGBA64(0, 0, color.NRGBA64{})
	m64.SetNRGBA64(1, 0, color.NRGBA64{A: 1}) // not fully transparent

	// A 2×2 GIF frame on a 5×5 screen: everything off the frame is transparent.
	frame := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.NRGBA{255, 255, 255, 255}})
	offFrame := encGIF(t, &gif.GIF{Image: []*image.Paletted{frame}, Delay: []int{0},
		Config: image.Config{ColorModel: frame.Palette, Width: 5, Height: 5}})

	for name, tc := range map[string]struct {
		data []byte
		edit int
	}{
		"gif":       {gifMask, 2},
		"png16":     {encPNG(t, m64), 1},
		"gif frame": {offFrame, 25 - 4},
	} {
		out, edit, err := MaskToBlackWhite(tc.data, 5, 5, 0)
		if err != nil || edit != tc.edit {
			t.Errorf("%s: edit %d, %v; want %d", name, edit, err, tc.edit)
			continue
		}
		black := 0
		for _, v := range grayPixels(t, out, 5, 5) {
			if v == 0 {
				black++
			}
		}
		if black != tc.edit {
			t.Errorf("%s: %d black pixels, edit %d", name, black, tc.edit)
		}
	}

	// WebP with alpha: the count must agree with the generic path.
	rose := readFile(t, "yellow_rose.lossy-with-alpha.webp")
	info, _ := Inspect(rose, 0)
	img, _, _ := Decode(rose, 0)
	out, edit, err := MaskToBlackWhite(rose, info.Width, info.Height, 0)
	ref := image.NewGray(image.Rect(0, 0, info.Width, info.Height))
	refEdit, _ := transparentToBlack(opaqueOnly{img}, ref)
	if err != nil && !(errors.Is(err, ErrMaskEmpty) && refEdit == 0) || edit != refEdit {
		t.Errorf("webp with alpha: edit %d, %v; the generic path says %d", edit, err, refEdit)
	}
	if err == nil && !bytes.Equal(grayPixels(t, out, info.Width, info.Height), ref.Pix) {
		t.Error("webp with alpha: the fast path and the generic path disagree")
	}
}

func TestMaskErrors(t *testing.T) {
	withHole := solid(8, 8, opaqueWhite)
	withHole.SetNRGBA(3, 3, clear)
	cases := []struct {
		name string
		data []byte
		w, h int
		want error
		msg  string
	}{
		{"wider", encPNG(t, withHole), 9, 8, ErrMaskSize, "8x8, the image is 9x8"},
		{"taller", encPNG(t, withHole), 8, 7, ErrMaskSize, ""},
		{"opaque", encPNG(t, solid(8, 8, opaqueWhite)), 8, 8, ErrMaskEmpty, "no fully transparent"},
		{"no alpha channel", encJPEG(t, solid(8, 8, opaqueWhite)), 8, 8, ErrMaskEmpty, "no alpha channel"},
		{"gray png", encPNG(t, image.NewGray(image.Rect(0, 0, 8, 8))), 8, 8, ErrMaskEmpty, "no alpha channel"},
		{"not an image", []byte("mask"), 8, 8, ErrNotImage, ""},
		{"bomb", bombPNG(100000, 100000), 100000, 100000, ErrTooManyPixels, ""},
		{"bomb of the wrong size", bombPNG(100000, 100000), 8, 8, ErrTooManyPixels, ""},
	}
	for _, tc := range cases {
		_, _, err := MaskToBlackWhite(tc.data, tc.w, tc.h, 0)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if _, _, err := MaskToBlackWhite(encPNG(t, withHole), 0, 8, 0); err == nil {
		t.Error("a zero image width was accepted")
	}
}

func TestNormalizeBlackWhiteMask(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 4, 2))
	copy(g.Pix, []byte{0, 127, 128, 255, 30, 200, 255, 255})
	out, edit, err := NormalizeBlackWhiteMask(encPNG(t, g), 4, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := grayPixels(t, out, 4, 2); !bytes.Equal(got, []byte{0, 0, 255, 255, 0, 255, 255, 255}) || edit != 3 {
		t.Errorf("gray: %v, edit %d", got, edit)
	}

	// Strokes painted on a transparent layer: transparent keeps, opaque dark changes.
	m := solid(3, 1, clear)
	m.SetNRGBA(0, 0, opaqueBlack)
	m.SetNRGBA(1, 0, color.NRGBA{0, 0, 0, 100}) // faint stroke: over white it is light
	out, edit, err = NormalizeBlackWhiteMask(encPNG(t, m), 3, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := grayPixels(t, out, 3, 1); !bytes.Equal(got, []byte{0, 255, 255}) || edit != 1 {
		t.Errorf("transparent layer: %v, edit %d", got, edit)
	}

	// A JPEG mask: a black square on white survives compression noise.
	sq := solid(32, 32, opaqueWhite)
	for y := 8; y < 24; y++ {
		for x := 8; x < 24; x++ {
			sq.SetNRGBA(x, y, opaqueBlack)
		}
	}
	if _, edit, err = NormalizeBlackWhiteMask(encJPEG(t, sq), 32, 32, 0); err != nil || edit != 256 {
		t.Errorf("jpeg square: edit %d, %v; want 256", edit, err)
	}

	if _, _, err := NormalizeBlackWhiteMask(encPNG(t, solid(4, 4, opaqueWhite)), 4, 4, 0); !errors.Is(err, ErrMaskEmpty) {
		t.Errorf("all white: %v, want ErrMaskEmpty", err)
	}
	if _, _, err := NormalizeBlackWhiteMask(encPNG(t, solid(4, 4, clear)), 4, 4, 0); !errors.Is(err, ErrMaskEmpty) {
		t.Errorf("all transparent: %v, want ErrMaskEmpty", err)
	}
	if _, edit, err := NormalizeBlackWhiteMask(encPNG(t, solid(4, 4, opaqueBlack)), 4, 4, 0); err != nil || edit != 16 {
		t.Errorf("all black: edit %d, %v; want 16", edit, err)
	}
	if _, _, err := NormalizeBlackWhiteMask(encPNG(t, sq), 32, 31, 0); !errors.Is(err, ErrMaskSize) {
		t.Errorf("wrong size: %v, want ErrMaskSize", err)
	}
}

// randomImages returns one image of every type the fast paths handle, with random pixels.
func randomImages(r *rand.Rand, w, h int) map[string]image.Image {
	rect := image.Rect(0, 0, w, h)
	fill := func(pix []byte) {
		for i := range pix {
			switch r.IntN(4) { // bias towards the interesting values 0 and 255
			case 0:
				pix[i] = 0
			case 1:
				pix[i] = 255
			default:
				pix[i] = byte(r.IntN(256))
			}
		}
	}
	nrgba, rgba := image.NewNRGBA(rect), image.NewRGBA(rect)
	fill(nrgba.Pix)
	fill(rgba.Pix)
	for i := 0; i < len(rgba.Pix); i += 4 { // keep it validly premultiplied
		a := rgba.Pix[i+3]
		rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2] = min(rgba.Pix[i], a), min(rgba.Pix[i+1], a), min(rgba.Pix[i+2], a)
	}
	n64, r64 := image.NewNRGBA64(rect), image.NewRGBA64(rect)
	fill(n64.Pix)
	for i := range r64.Pix {
		r64.Pix[i] = 0
	}
	for i := 6; i < len(r64.Pix); i += 8 {
		r64.Pix[i], r64.Pix[i+1] = byte(r.IntN(2))*255, byte(r.IntN(2))*255
	}
	gray := image.NewGray(rect)
	fill(gray.Pix)
	ycc := image.NewYCbCr(rect, image.YCbCrSubsampleRatio420)
	fill(ycc.Y)
	fill(ycc.Cb)
	fill(ycc.Cr)
	nycca := image.NewNYCbCrA(rect, image.YCbCrSubsampleRatio444)
	fill(nycca.Y)
	fill(nycca.Cb)
	fill(nycca.Cr)
	fill(nycca.A)
	pal := image.NewPaletted(rect, color.Palette{color.NRGBA{}, color.NRGBA{0, 0, 0, 255}, color.NRGBA{255, 255, 255, 255}, color.NRGBA{90, 200, 40, 128}})
	for i := range pal.Pix {
		pal.Pix[i] = byte(r.IntN(4))
	}
	return map[string]image.Image{"nrgba": nrgba, "rgba": rgba, "nrgba64": n64, "rgba64": r64, "gray": gray,
		"ycbcr": ycc, "nycbcra": nycca, "paletted": pal,
		// A sub-image whose bounds do not start at the origin.
		"nrgba sub": nrgba.SubImage(image.Rect(1, 1, w, h)), "paletted sub": pal.SubImage(image.Rect(1, 1, w, h))}
}

func TestFastPathsMatchGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, img := range randomImages(r, 37, 29) {
		b := img.Bounds()
		fast, slow := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy())), image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		e1, _ := transparentToBlack(img, fast)
		e2, _ := transparentToBlack(opaqueOnly{img}, slow)
		if e1 != e2 || !bytes.Equal(fast.Pix, slow.Pix) {
			t.Errorf("%s: transparentToBlack fast %d, generic %d", name, e1, e2)
		}
		e1, e2 = threshold(img, fast), threshold(opaqueOnly{img}, slow)
		if e1 != e2 || !bytes.Equal(fast.Pix, slow.Pix) {
			t.Errorf("%s: threshold fast %d, generic %d", name, e1, e2)
		}
	}
}
