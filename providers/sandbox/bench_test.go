package sandbox_test

import (
	"image/color"
	"testing"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/sandbox"
)

func benchCall(b *testing.B, req *providers.Request) {
	a := newAdapter(b, nil)
	b.ReportAllocs()
	var bytes int64
	for b.Loop() {
		res, err := providers.Do(bg(), a, req)
		if err != nil {
			b.Fatal(err)
		}
		bytes = 0
		for _, o := range res.Images {
			bytes += int64(len(o.Data))
		}
	}
	b.ReportMetric(float64(bytes), "png-bytes")
}

// BenchmarkGenerate1024 renders and encodes one 1024x1024 image (the palette fast path).
func BenchmarkGenerate1024(b *testing.B) {
	benchCall(b, &providers.Request{Model: sandbox.ModelImage, Prompt: "a benchmark of a lighthouse at dusk", N: 1, Width: 1024, Height: 1024, Seed: seed(1)})
}

// BenchmarkGenerate1024x4 renders a full batch of four.
func BenchmarkGenerate1024x4(b *testing.B) {
	benchCall(b, &providers.Request{Model: sandbox.ModelImage, Prompt: "a benchmark of a lighthouse at dusk", N: 4, Width: 1024, Height: 1024, Seed: seed(1)})
}

// BenchmarkGenerateReference1024 blends a reference image (the RGBA path).
func BenchmarkGenerateReference1024(b *testing.B) {
	ref := providers.Image{Data: pngOf(b, 512, 512, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x), uint8(y), 0, 255} })}
	benchCall(b, &providers.Request{Model: sandbox.ModelImage, Prompt: "with a reference", N: 1, Width: 1024, Height: 1024, Seed: seed(1), Images: []providers.Image{ref}})
}

// BenchmarkEdit1024 decodes a 1024x1024 source and mask, repaints half and encodes.
func BenchmarkEdit1024(b *testing.B) {
	src := pngOf(b, 1024, 1024, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x), uint8(y), 90, 255} })
	mask := pngOf(b, 1024, 1024, func(x, y int) color.NRGBA { return color.NRGBA{A: uint8(min(x, 1) * 255 * (y % 2))} })
	benchCall(b, &providers.Request{Operation: providers.OpEdit, Model: sandbox.ModelImage, Prompt: "edit", N: 1, Seed: seed(1),
		Images: []providers.Image{{Data: src}}, Mask: &providers.Image{Data: mask}})
}

// BenchmarkVariation1024 decodes a 1024x1024 source, rotates its hue and encodes.
func BenchmarkVariation1024(b *testing.B) {
	src := pngOf(b, 1024, 1024, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x), uint8(y), 90, 255} })
	benchCall(b, &providers.Request{Operation: providers.OpVariation, Model: sandbox.ModelImage, N: 1, Seed: seed(1), Images: []providers.Image{{Data: src}}})
}
