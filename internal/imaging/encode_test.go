package imaging

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"sync"
	"testing"
)

func TestEncodePNG(t *testing.T) {
	src := solid(31, 17, color.NRGBA{10, 20, 30, 40})
	src.SetNRGBA(5, 5, color.NRGBA{200, 100, 50, 255})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ { // concurrent use of the pools
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				data, err := EncodePNG(src)
				if err != nil {
					t.Error(err)
					return
				}
				img, err := png.Decode(bytes.NewReader(data))
				if err != nil {
					t.Error(err)
					return
				}
				if got := img.(*image.NRGBA); !bytes.Equal(got.Pix, src.Pix) {
					t.Error("the round trip changed the pixels")
					return
				}
			}
		}()
	}
	wg.Wait()

	var buf bytes.Buffer
	if err := EncodePNGTo(&buf, src); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(buf.Bytes(), 0)
	if err != nil || info.Width != 31 || info.Height != 17 {
		t.Errorf("EncodePNGTo: %+v, %v", info, err)
	}
	if _, err := EncodePNG(image.NewNRGBA(image.Rect(0, 0, 0, 0))); err == nil {
		t.Error("an empty image was encoded")
	}
}

// The returned slice must not alias a pooled buffer that a later call overwrites.
func TestEncodePNGOwnsResult(t *testing.T) {
	a, _ := EncodePNG(solid(8, 8, opaqueBlack))
	keep := bytes.Clone(a)
	for i := 0; i < 5; i++ {
		EncodePNG(solid(8, 8, opaqueWhite))
	}
	if !bytes.Equal(a, keep) {
		t.Error("a later EncodePNG changed an earlier result")
	}
}
