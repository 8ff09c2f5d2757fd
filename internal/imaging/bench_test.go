package imaging

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"
)

// photo1024 is a 1024×1024 opaque image with noisy content, roughly what clients upload.
func photo1024() *image.NRGBA {
	r := rand.New(rand.NewPCG(3, 4))
	img := solid(1024, 1024, opaqueWhite)
	for i := 0; i < len(img.Pix); i += 4 {
		v := byte(i/4096) + byte(r.IntN(16))
		img.Pix[i], img.Pix[i+1], img.Pix[i+2] = v, v/2, 255-v
	}
	return img
}

// mask1024 is a 1024×1024 OpenAI mask with a transparent disc in the middle.
func mask1024() *image.NRGBA {
	img := solid(1024, 1024, opaqueWhite)
	for y := 0; y < 1024; y++ {
		for x := 0; x < 1024; x++ {
			if dx, dy := x-512, y-512; dx*dx+dy*dy < 300*300 {
				img.SetNRGBA(x, y, color.NRGBA{})
			}
		}
	}
	return img
}

func BenchmarkInspectPNG(b *testing.B) {
	data := encPNG(b, photo1024())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inspect(data, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePNG1024(b *testing.B) {
	data := encPNG(b, photo1024())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(data, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMaskToBlackWhite1024(b *testing.B) {
	data := encPNG(b, mask1024())
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := MaskToBlackWhite(data, 1024, 1024, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalizeBlackWhiteMask1024(b *testing.B) {
	// The disc painted black on white, as an RGB PNG a client might draw.
	m := mask1024()
	for i := 0; i < len(m.Pix); i += 4 {
		if m.Pix[i+3] == 0 {
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = 0, 0, 0, 255
		}
	}
	data := encPNG(b, m)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := NormalizeBlackWhiteMask(data, 1024, 1024, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePNG1024(b *testing.B) {
	img := photo1024()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodePNG(img); err != nil {
			b.Fatal(err)
		}
	}
}
