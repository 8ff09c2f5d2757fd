package ideogram

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/imagegw/imagegw/providers"
)

// The conversion itself is internal/imaging's and tested there; these tests pin what the adapter
// sends and how it reports refused masks.

// errNothingToEdit stands for "refused as marking nothing to change" in these tests.
var errNothingToEdit = errors.New("nothing to edit")

func convertWith(t *testing.T, format string) func(mask []byte, w, h int) ([]byte, error) {
	return func(mask []byte, w, h int) ([]byte, error) {
		src := image.NewGray(image.Rect(0, 0, max(w, 1), max(h, 1)))
		req := &providers.Request{Images: []providers.Image{{Data: encodePNG(t, src)}}, Mask: &providers.Image{Data: mask}}
		out, err := convertMask(req, knobs{maskFormat: format})
		var pe *providers.Error
		if errors.As(err, &pe) {
			if pe.Param != "mask" || pe.Message == "" {
				t.Fatalf("mask error %+v", pe)
			}
			if pe.Kind == providers.KindInvalidRequest && bytes.Contains([]byte(pe.Message), []byte("marks nothing")) {
				return nil, errNothingToEdit
			}
		}
		return out, err
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gray decodes a converted mask and checks it is strictly black and white, returning its pixels.
func gray(t *testing.T, b []byte) *image.Gray {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("mask is %T, want *image.Gray", img)
	}
	for _, p := range g.Pix {
		if p != 0 && p != 0xff {
			t.Fatalf("mask has a grey pixel %d", p)
		}
	}
	return g
}

func TestMaskToBlackWhite(t *testing.T) {
	maskToBlackWhite := convertWith(t, "")
	// Alpha 0 → black (change); any other alpha, even 1, → white (keep).
	src := image.NewNRGBA(image.Rect(0, 0, 4, 2))
	for i := 3; i < len(src.Pix); i += 4 {
		src.Pix[i] = 0xff // opaque black everywhere
	}
	src.SetNRGBA(0, 0, color.NRGBA{0xff, 0xff, 0xff, 0})
	src.SetNRGBA(1, 0, color.NRGBA{0, 0, 0, 1})
	src.SetNRGBA(0, 1, color.NRGBA{0, 0, 0, 0x80})
	src.SetNRGBA(3, 1, color.NRGBA{0x12, 0x34, 0x56, 0})
	out, err := maskToBlackWhite(encodePNG(t, src), 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	g := gray(t, out)
	want := []uint8{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}
	if !bytes.Equal(g.Pix, want) {
		t.Fatalf("mask pixels %v, want %v", g.Pix, want)
	}

	// A paletted PNG with a transparent palette entry.
	pal := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Transparent, color.White})
	pal.Pix = []uint8{0, 1, 1, 1}
	out, err = maskToBlackWhite(encodePNG(t, pal), 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if g := gray(t, out); !bytes.Equal(g.Pix, []uint8{0, 0xff, 0xff, 0xff}) {
		t.Fatalf("paletted: %v", g.Pix)
	}

	// Nothing transparent, a JPEG (no alpha at all), a size mismatch, not an image.
	opaque := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	for i := range opaque.Pix {
		opaque.Pix[i] = 0xff
	}
	if _, err := maskToBlackWhite(encodePNG(t, opaque), 2, 2); !errors.Is(err, errNothingToEdit) {
		t.Errorf("opaque mask: %v", err)
	}
	var jb bytes.Buffer
	_ = jpeg.Encode(&jb, opaque, nil)
	if _, err := maskToBlackWhite(jb.Bytes(), 2, 2); !errors.Is(err, errNothingToEdit) {
		t.Errorf("JPEG mask: %v", err)
	}
	if _, err := maskToBlackWhite(encodePNG(t, opaque), 3, 2); err == nil || errors.Is(err, errNothingToEdit) {
		t.Errorf("size mismatch: %v", err)
	}
	if _, err := maskToBlackWhite([]byte("not an image"), 2, 2); err == nil {
		t.Error("garbage was accepted")
	}
}

func TestNormalizeBlackWhiteMask(t *testing.T) {
	normalizeBlackWhiteMask := convertWith(t, "bw")
	src := image.NewNRGBA(image.Rect(0, 0, 4, 1))
	src.SetNRGBA(0, 0, color.NRGBA{0x10, 0x10, 0x10, 0xff}) // near black → black
	src.SetNRGBA(1, 0, color.NRGBA{0xe0, 0xe0, 0xe0, 0xff}) // near white → white
	src.SetNRGBA(2, 0, color.NRGBA{0, 0, 0, 0})             // transparent over white → white
	src.SetNRGBA(3, 0, color.NRGBA{0x90, 0x90, 0x90, 0xff}) // light grey → white
	out, err := normalizeBlackWhiteMask(encodePNG(t, src), 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g := gray(t, out); !bytes.Equal(g.Pix, []uint8{0, 0xff, 0xff, 0xff}) {
		t.Fatalf("pixels %v", g.Pix)
	}
	// A JPEG black-and-white mask with compression noise.
	bw := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range bw.Pix {
		if i%16 >= 8 {
			bw.Pix[i] = 0xff
		}
	}
	var jb bytes.Buffer
	_ = jpeg.Encode(&jb, bw, &jpeg.Options{Quality: 60})
	out, err = normalizeBlackWhiteMask(jb.Bytes(), 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	g := gray(t, out)
	if g.Pix[0] != 0 || g.Pix[15] != 0xff {
		t.Fatalf("JPEG mask: left %d right %d", g.Pix[0], g.Pix[15])
	}
	white := image.NewGray(image.Rect(0, 0, 2, 2))
	for i := range white.Pix {
		white.Pix[i] = 0xff
	}
	if _, err := normalizeBlackWhiteMask(encodePNG(t, white), 2, 2); !errors.Is(err, errNothingToEdit) {
		t.Errorf("all-white mask: %v", err)
	}
}
