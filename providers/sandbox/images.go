package sandbox

import (
	"bytes"
	"image"
	"image/color"
	_ "image/jpeg" // source and reference images may be JPEG
	_ "image/png"
	"math"

	_ "golang.org/x/image/webp" // ... or WebP

	"github.com/imagegw/imagegw/providers"
)

// maxInputPixels caps a decoded input image. The front door checks its own pixel cap before an
// adapter sees an image; this is defence in depth against a decompression bomb.
const maxInputPixels = 4096 * 4096

// decodeImage decodes an input image (param names it in errors), reading its header first so an
// oversized image is refused before its pixels are allocated.
func decodeImage(param string, im providers.Image) (image.Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(im.Data))
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInvalidRequest, Param: param,
			Message: "the " + param + " could not be read as a PNG, JPEG or WebP image", Err: err}
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxInputPixels {
		return nil, &providers.Error{Kind: providers.KindTooLarge, Param: param,
			Message: "the " + param + " has too many pixels for the sandbox (at most 4096x4096)"}
	}
	img, _, err := image.Decode(bytes.NewReader(im.Data))
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInvalidRequest, Param: param,
			Message: "the " + param + " could not be decoded", Err: err}
	}
	return img, nil
}

// sampleMap maps each of n output positions to a source position in [lo, lo+size) (nearest
// neighbour).
func sampleMap(n, lo, size int) []int {
	m := make([]int, n)
	for i := range m {
		m[i] = lo + i*size/n
	}
	return m
}

// toNRGBA returns src scaled (nearest neighbour) to w×h as non-premultiplied RGBA. An image of
// the same size keeps every pixel exactly.
func toNRGBA(src image.Image, w, h int) *image.NRGBA {
	b := src.Bounds()
	xm, ym := sampleMap(w, b.Min.X, b.Dx()), sampleMap(h, b.Min.Y, b.Dy())
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		d := dst.Pix[y*dst.Stride : y*dst.Stride+w*4]
		switch s := src.(type) {
		case *image.NRGBA:
			row := s.Pix[(ym[y]-s.Rect.Min.Y)*s.Stride:]
			for x, sx := range xm {
				o := (sx - s.Rect.Min.X) * 4
				copy(d[x*4:x*4+4], row[o:o+4])
			}
		case *image.RGBA:
			row := s.Pix[(ym[y]-s.Rect.Min.Y)*s.Stride:]
			for x, sx := range xm {
				o := (sx - s.Rect.Min.X) * 4
				r, g, bb, a := row[o], row[o+1], row[o+2], row[o+3]
				switch a {
				case 0:
					r, g, bb = 0, 0, 0
				case 255:
				default:
					r = uint8(int(r) * 255 / int(a))
					g = uint8(int(g) * 255 / int(a))
					bb = uint8(int(bb) * 255 / int(a))
				}
				d[x*4], d[x*4+1], d[x*4+2], d[x*4+3] = r, g, bb, a
			}
		default:
			for x, sx := range xm {
				c := color.NRGBAModel.Convert(src.At(sx, ym[y])).(color.NRGBA)
				d[x*4], d[x*4+1], d[x*4+2], d[x*4+3] = c.R, c.G, c.B, c.A
			}
		}
	}
	return dst
}

// transparentArea returns, for each pixel of a w×h image (row-major), whether img scaled to w×h
// is fully transparent there: the area an OpenAI-style mask marks for editing.
func transparentArea(img image.Image, w, h int) []bool {
	b := img.Bounds()
	xm, ym := sampleMap(w, b.Min.X, b.Dx()), sampleMap(h, b.Min.Y, b.Dy())
	area := make([]bool, w*h)
	for y := range h {
		a := area[y*w : (y+1)*w]
		switch s := img.(type) {
		case *image.NRGBA:
			row := s.Pix[(ym[y]-s.Rect.Min.Y)*s.Stride:]
			for x, sx := range xm {
				a[x] = row[(sx-s.Rect.Min.X)*4+3] == 0
			}
		case *image.RGBA:
			row := s.Pix[(ym[y]-s.Rect.Min.Y)*s.Stride:]
			for x, sx := range xm {
				a[x] = row[(sx-s.Rect.Min.X)*4+3] == 0
			}
		case *image.Alpha:
			row := s.Pix[(ym[y]-s.Rect.Min.Y)*s.Stride:]
			for x, sx := range xm {
				a[x] = row[sx-s.Rect.Min.X] == 0
			}
		default:
			for x, sx := range xm {
				_, _, _, al := img.At(sx, ym[y]).RGBA()
				a[x] = al == 0
			}
		}
	}
	return area
}

// paletteNRGBA converts a generated image to NRGBA, for blending and compositing.
func paletteNRGBA(p *image.Paletted) *image.NRGBA {
	w, h := p.Rect.Dx(), p.Rect.Dy()
	var lut [256][4]uint8
	for i, c := range p.Palette {
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		lut[i] = [4]uint8{n.R, n.G, n.B, n.A}
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		src := p.Pix[y*p.Stride : y*p.Stride+w]
		d := dst.Pix[y*dst.Stride : y*dst.Stride+w*4]
		for x, v := range src {
			copy(d[x*4:x*4+4], lut[v][:])
		}
	}
	return dst
}

// averageNRGBA averages images of the same size, channel by channel.
func averageNRGBA(imgs []*image.NRGBA) *image.NRGBA {
	if len(imgs) == 1 {
		return imgs[0]
	}
	dst := image.NewNRGBA(imgs[0].Rect)
	for i := range dst.Pix {
		sum := 0
		for _, im := range imgs {
			sum += int(im.Pix[i])
		}
		dst.Pix[i] = uint8(sum / len(imgs))
	}
	return dst
}

// blend mixes ref into dst (same size, dst opaque) by weight/256, scaled by ref's alpha.
func blend(dst, ref *image.NRGBA, weight int) {
	for i := 0; i < len(dst.Pix); i += 4 {
		w := weight * int(ref.Pix[i+3]) / 255
		for c := range 3 {
			dst.Pix[i+c] = uint8((int(dst.Pix[i+c])*(256-w) + int(ref.Pix[i+c])*w) >> 8)
		}
	}
}

// strengthWeight turns a strength in [0, 1] into a blend weight out of 256 (0.5 when unset).
func strengthWeight(s *float64) int {
	if s == nil {
		return 128
	}
	// Multiplying by a power of two is exact, so this rounds the same everywhere.
	return int(math.Round(*s * 256))
}

// composite turns gen into the edit: every pixel outside area is replaced by src's (all three
// the same size). It works in place so an edit allocates no further image.
func composite(gen, src *image.NRGBA, area []bool) *image.NRGBA {
	for i, in := range area {
		if !in {
			copy(gen.Pix[i*4:i*4+4], src.Pix[i*4:i*4+4])
		}
	}
	return gen
}

// hueMatrix is a luminance-preserving hue rotation by deg degrees in 12-bit fixed point.
// math.Sin and math.Cos may differ in the last bit across architectures; rounding to 1/4096
// hides that for the whole-degree angles used here.
func hueMatrix(deg int) [9]int {
	rad := float64(deg) * math.Pi / 180
	c, s := math.Cos(rad), math.Sin(rad)
	m := [9]float64{
		0.213 + c*0.787 - s*0.213, 0.715 - c*0.715 - s*0.715, 0.072 - c*0.072 + s*0.928,
		0.213 - c*0.213 + s*0.143, 0.715 + c*0.285 + s*0.140, 0.072 - c*0.072 - s*0.283,
		0.213 - c*0.213 - s*0.787, 0.715 - c*0.715 + s*0.715, 0.072 + c*0.928 + s*0.072,
	}
	var out [9]int
	for i, v := range m {
		out[i] = int(math.Round(v * 4096))
	}
	return out
}

func clamp8(v int) uint8 {
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

// hueRotate rotates the hue of every pixel of img in place, keeping alpha.
func hueRotate(img *image.NRGBA, deg int) {
	m := hueMatrix(deg)
	for i := 0; i < len(img.Pix); i += 4 {
		r, g, b := int(img.Pix[i]), int(img.Pix[i+1]), int(img.Pix[i+2])
		img.Pix[i] = clamp8((m[0]*r + m[1]*g + m[2]*b + 2048) >> 12)
		img.Pix[i+1] = clamp8((m[3]*r + m[4]*g + m[5]*b + 2048) >> 12)
		img.Pix[i+2] = clamp8((m[6]*r + m[7]*g + m[8]*b + 2048) >> 12)
	}
}
