package ideogram

// The mask conversion below is local to this adapter until internal/imaging provides
// MaskToBlackWhite and NormalizeBlackWhiteMask (being written at the same time); switch to them
// when they land, keeping the tests in mask_test.go.

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // masks may arrive as JPEG (mask_format=bw)
	"image/png"

	_ "golang.org/x/image/webp" // and as WebP

	"github.com/imagegw/imagegw/providers"
)

// maxMaskPixels bounds the masks the adapter decodes: Ideogram takes images of at most 10 MB, and
// 64 megapixels is far beyond any size it generates.
const maxMaskPixels = 64 << 20

// errNothingToEdit reports a mask that marks no pixel for change.
var errNothingToEdit = fmt.Errorf("the mask marks nothing to change")

// decodeMask decodes a mask after checking its dimensions against the source image's.
func decodeMask(data []byte, w, h int) (image.Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the mask is not a PNG, JPEG or WebP image: %w", err)
	}
	if cfg.Width*cfg.Height > maxMaskPixels {
		return nil, fmt.Errorf("the mask is %dx%d, too large", cfg.Width, cfg.Height)
	}
	if w > 0 && h > 0 && (cfg.Width != w || cfg.Height != h) {
		return nil, fmt.Errorf("the mask is %dx%d but the image is %dx%d; they must be the same size", cfg.Width, cfg.Height, w, h)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the mask could not be decoded: %w", err)
	}
	return img, nil
}

// maskToBlackWhite converts an OpenAI mask (fully transparent pixels, alpha 0, are changed) into
// Ideogram's mask (black pixels are changed, white kept) of the same size, as a grayscale PNG.
// w and h are the source image's size (zero: not checked). A mask without any fully transparent
// pixel is refused: it would change nothing, and Ideogram rejects an all-white mask.
func maskToBlackWhite(data []byte, w, h int) ([]byte, error) {
	src, err := decodeMask(data, w, h)
	if err != nil {
		return nil, err
	}
	b := src.Bounds()
	dst := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	edit := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := dst.Pix[(y-b.Min.Y)*dst.Stride:]
		for x := b.Min.X; x < b.Max.X; x++ {
			_, _, _, a := src.At(x, y).RGBA()
			if a == 0 {
				row[x-b.Min.X] = 0
				edit++
			} else {
				row[x-b.Min.X] = 0xff
			}
		}
	}
	if edit == 0 {
		return nil, errNothingToEdit
	}
	return encodeGray(dst)
}

// normalizeBlackWhiteMask takes a mask that already follows Ideogram's convention (black = change)
// and makes it strictly black and white: pixels darker than mid-grey (after compositing any
// transparency over white) become black, the rest white. An all-white result is refused.
func normalizeBlackWhiteMask(data []byte, w, h int) ([]byte, error) {
	src, err := decodeMask(data, w, h)
	if err != nil {
		return nil, err
	}
	b := src.Bounds()
	dst := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	edit := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := dst.Pix[(y-b.Min.Y)*dst.Stride:]
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := src.At(x, y).RGBA()
			// Premultiplied colour over white: c + (1 - a).
			lum := (299*(r+0xffff-a) + 587*(g+0xffff-a) + 114*(bl+0xffff-a)) / 1000
			if lum < 0x8000 {
				row[x-b.Min.X] = 0
				edit++
			} else {
				row[x-b.Min.X] = 0xff
			}
		}
	}
	if edit == 0 {
		return nil, errNothingToEdit
	}
	return encodeGray(dst)
}

func encodeGray(img *image.Gray) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode mask: %w", err)
	}
	return buf.Bytes(), nil
}

// imageSize returns an input image's size, from the front door's fields or its header.
func imageSize(im providers.Image) (int, int) {
	if im.Width > 0 && im.Height > 0 {
		return im.Width, im.Height
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(im.Data))
	if err != nil {
		return 0, 0
	}
	return cfg.Width, cfg.Height
}
