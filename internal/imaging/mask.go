package imaging

import (
	"fmt"
	"image"
	"image/color"
)

// Mask pixel values in Ideogram's convention.
const (
	maskEdit = 0x00 // black: change this pixel
	maskKeep = 0xff // white: keep this pixel
)

// MaskToBlackWhite converts an OpenAI edit mask, in which fully transparent pixels (alpha 0) mark
// the area to change, into Ideogram's mask: a grayscale PNG, black where the image is to change
// and white where it is kept. The mask must be exactly width×height, the size of the image it
// applies to (ErrMaskSize), and must have at least one fully transparent pixel (ErrMaskEmpty;
// a mask without an alpha channel never has one). maxPixels caps the mask as in Inspect. It
// returns the PNG and the number of pixels to change.
func MaskToBlackWhite(mask []byte, width, height, maxPixels int) (pngData []byte, editPixels int, err error) {
	img, err := decodeMask(mask, width, height, maxPixels)
	if err != nil {
		return nil, 0, err
	}
	out := image.NewGray(image.Rect(0, 0, width, height))
	edit, hasAlpha := transparentToBlack(img, out)
	if edit == 0 {
		if !hasAlpha {
			return nil, 0, fmt.Errorf("%w: the mask has no alpha channel; fully transparent pixels mark the area to change", ErrMaskEmpty)
		}
		return nil, 0, fmt.Errorf("%w: the mask has no fully transparent pixel; those mark the area to change", ErrMaskEmpty)
	}
	b, err := encodeWith(maskEncoder, out)
	if err != nil {
		return nil, 0, err
	}
	return b, edit, nil
}

// NormalizeBlackWhiteMask takes a mask already in Ideogram's convention (black = change, white =
// keep) and returns it as a strictly black-and-white grayscale PNG. Pixels are not required to be
// pure black or white: antialiased edges and JPEG noise are expected, so every pixel is
// thresholded at 50% luminance (Rec. 601 weights) after compositing any transparency over white,
// so that a transparent background keeps the image and only painted strokes mark changes. The
// mask must be exactly width×height (ErrMaskSize) and must not come out all white (ErrMaskEmpty).
// It returns the PNG and the number of pixels to change.
func NormalizeBlackWhiteMask(mask []byte, width, height, maxPixels int) (pngData []byte, editPixels int, err error) {
	img, err := decodeMask(mask, width, height, maxPixels)
	if err != nil {
		return nil, 0, err
	}
	out := image.NewGray(image.Rect(0, 0, width, height))
	edit := threshold(img, out)
	if edit == 0 {
		return nil, 0, fmt.Errorf("%w: the mask is all white; black marks the area to change", ErrMaskEmpty)
	}
	b, err := encodeWith(maskEncoder, out)
	if err != nil {
		return nil, 0, err
	}
	return b, edit, nil
}

// decodeMask checks the mask's declared size against the image's before decoding it.
func decodeMask(mask []byte, width, height, maxPixels int) (image.Image, error) {
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("imaging: mask: bad image size %dx%d", width, height)
	}
	info, f, err := inspect(mask, maxPixels)
	if err != nil {
		return nil, fmt.Errorf("imaging: mask: %w", err)
	}
	if info.Width != width || info.Height != height {
		return nil, fmt.Errorf("%w: the mask is %dx%d, the image is %dx%d", ErrMaskSize, info.Width, info.Height, width, height)
	}
	img, err := decodeAs(f, mask, info)
	if err != nil {
		return nil, fmt.Errorf("imaging: mask: %w", err)
	}
	return img, nil
}

// transparentToBlack writes black to out where src is fully transparent and white elsewhere.
// src and out have the same size and out's origin is (0,0). It returns the number of black
// pixels and whether src can hold transparency at all.
func transparentToBlack(src image.Image, out *image.Gray) (edit int, hasAlpha bool) {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	mark := func(row []byte, x int, transparent bool) {
		if transparent {
			row[x] = maskEdit
			edit++
		} else {
			row[x] = maskKeep
		}
	}
	switch s := src.(type) {
	case *image.Gray, *image.Gray16, *image.YCbCr, *image.CMYK:
		for i := range out.Pix {
			out.Pix[i] = maskKeep
		}
		return 0, false
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			in, row := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				mark(row, x, in[4*x+3] == 0)
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			in, row := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				mark(row, x, in[4*x+3] == 0)
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			in, row := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				mark(row, x, in[8*x+6]|in[8*x+7] == 0)
			}
		}
	case *image.RGBA64:
		for y := 0; y < h; y++ {
			in, row := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				mark(row, x, in[8*x+6]|in[8*x+7] == 0)
			}
		}
	case *image.NYCbCrA:
		for y := 0; y < h; y++ {
			in, row := s.A[s.AOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				mark(row, x, in[x] == 0)
			}
		}
	case *image.Paletted:
		var clear [256]bool
		for i, c := range s.Palette {
			_, _, _, a := c.RGBA()
			clear[i] = a == 0
		}
		for y := 0; y < h; y++ {
			in, row := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				mark(row, x, clear[in[x]])
			}
		}
	default:
		for y := 0; y < h; y++ {
			row := out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				_, _, _, a := src.At(b.Min.X+x, b.Min.Y+y).RGBA()
				mark(row, x, a == 0)
			}
		}
	}
	return edit, true
}

// dark reports whether a premultiplied 16-bit colour, composited over white, is below 50%
// luminance. The weights are color.GrayModel's (Rec. 601).
func dark(r, g, b, a uint32) bool {
	bg := 0xffff - a
	y := (19595*(r+bg) + 38470*(g+bg) + 7471*(b+bg) + 1<<15) >> 16
	return y < 0x8000
}

// threshold writes black to out where src is dark (see dark) and white elsewhere, returning the
// number of black pixels. src and out have the same size and out's origin is (0,0).
func threshold(src image.Image, out *image.Gray) (edit int) {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	mark := func(row []byte, x int, black bool) {
		if black {
			row[x] = maskEdit
			edit++
		} else {
			row[x] = maskKeep
		}
	}
	switch s := src.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			in, row := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				mark(row, x, in[x] < 0x80)
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			in, row := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				p := in[4*x : 4*x+4 : 4*x+4]
				mark(row, x, dark(color.NRGBA{p[0], p[1], p[2], p[3]}.RGBA()))
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			in, row := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				p := in[4*x : 4*x+4 : 4*x+4]
				mark(row, x, dark(color.RGBA{p[0], p[1], p[2], p[3]}.RGBA()))
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			row := out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				yi, ci := s.YOffset(b.Min.X+x, b.Min.Y+y), s.COffset(b.Min.X+x, b.Min.Y+y)
				mark(row, x, dark(color.YCbCr{s.Y[yi], s.Cb[ci], s.Cr[ci]}.RGBA()))
			}
		}
	case *image.Paletted:
		var black [256]bool
		for i, c := range s.Palette {
			black[i] = dark(c.RGBA())
		}
		for y := 0; y < h; y++ {
			in, row := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				mark(row, x, black[in[x]])
			}
		}
	default:
		for y := 0; y < h; y++ {
			row := out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				mark(row, x, dark(src.At(b.Min.X+x, b.Min.Y+y).RGBA()))
			}
		}
	}
	return edit
}
