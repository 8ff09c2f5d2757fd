package imaging_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"github.com/imagegw/imagegw/internal/imaging"
)

// An OpenAI mask (transparent = change) becomes Ideogram's (black = change).
func ExampleMaskToBlackWhite() {
	mask := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	for y := 0; y < 4; y++ {
		for x := 0; x < 4; x++ {
			mask.SetNRGBA(x, y, color.NRGBA{255, 255, 255, 255})
		}
	}
	mask.SetNRGBA(1, 1, color.NRGBA{}) // fully transparent: change this pixel
	var buf bytes.Buffer
	png.Encode(&buf, mask)

	out, edit, err := imaging.MaskToBlackWhite(buf.Bytes(), 4, 4, 0)
	info, _ := imaging.Inspect(out, 0)
	fmt.Println(edit, err, info.Width, info.Height)

	_, _, err = imaging.MaskToBlackWhite(buf.Bytes(), 8, 8, 0)
	fmt.Println(errors.Is(err, imaging.ErrMaskSize))
	// Output:
	// 1 <nil> 4 4
	// true
}
