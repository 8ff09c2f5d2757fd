package sandbox

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"sync"

	"golang.org/x/image/font/basicfont"
)

// Palette layout of a generated image: a ramp between two colours, the same ramp darkened (the
// caption panel shades ramp pixels into it) and the caption's ink.
const (
	rampLen    = 120
	idxWhite   = 2 * rampLen
	idxBlack   = 2*rampLen + 1
	paletteLen = 2*rampLen + 2
	// shadeMul/256 is how much of its brightness a pattern pixel under the caption panel keeps.
	shadeMul = 72
	// shadeMulSource is the same for images derived from a source, darker so that text already
	// in the source (a sandbox image's own caption) does not show through.
	shadeMulSource = 28
)

// Everything here is integer arithmetic on purpose: floating point may round differently across
// architectures (fused multiply-add), and the sandbox promises the same bytes everywhere.

// mix64 is the splitmix64 finaliser: it spreads the bits of a hash.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// patternHash derives the pattern and colours of an image from its prompt and seed.
func patternHash(prompt string, seed int64) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(prompt))
	var b [9]byte
	binary.LittleEndian.PutUint64(b[1:], uint64(seed))
	_, _ = h.Write(b[:])
	return mix64(h.Sum64())
}

// hsv converts a hue in degrees (0..359) and saturation and value (0..255) to RGB.
func hsv(h, s, v int) (r, g, b uint8) {
	if s == 0 {
		return uint8(v), uint8(v), uint8(v)
	}
	region := h / 60
	rem := (h - region*60) * 255 / 60
	p := v * (255 - s) / 255
	q := v * (255 - s*rem/255) / 255
	t := v * (255 - s*(255-rem)/255) / 255
	switch region {
	case 0:
		return uint8(v), uint8(t), uint8(p)
	case 1:
		return uint8(q), uint8(v), uint8(p)
	case 2:
		return uint8(p), uint8(v), uint8(t)
	case 3:
		return uint8(p), uint8(q), uint8(v)
	case 4:
		return uint8(t), uint8(p), uint8(v)
	}
	return uint8(v), uint8(p), uint8(q)
}

// newPalette builds the palette of a generated image: two hues from h, saturated by style.
func newPalette(h uint64, style string) color.Palette {
	sat := 170
	switch style {
	case "vivid":
		sat = 235
	case "natural":
		sat = 90
	}
	hue1 := int(h % 360)
	hue2 := (hue1 + 90 + int((h>>9)%180)) % 360
	r1, g1, b1 := hsv(hue1, sat, 245)
	r2, g2, b2 := hsv(hue2, sat, 140)
	lerp := func(a, b uint8, i int) uint8 { return uint8((int(a)*(rampLen-1-i) + int(b)*i) / (rampLen - 1)) }
	p := make(color.Palette, paletteLen)
	for i := range rampLen {
		c := color.RGBA{lerp(r1, r2, i), lerp(g1, g2, i), lerp(b1, b2, i), 255}
		p[i] = c
		p[rampLen+i] = color.RGBA{uint8(int(c.R) * shadeMul >> 8), uint8(int(c.G) * shadeMul >> 8), uint8(int(c.B) * shadeMul >> 8), 255}
	}
	p[idxWhite] = color.RGBA{255, 255, 255, 255}
	p[idxBlack] = color.RGBA{0, 0, 0, 255}
	return p
}

// triangle maps any integer onto the ramp as a triangle wave (0..rampLen-1..0), so patterns
// have no hard seams.
var triangle = func() (t [2 * rampLen]uint8) {
	for i := range t {
		if i < rampLen {
			t[i] = uint8(i)
		} else {
			t[i] = uint8(2*rampLen - 1 - i)
		}
	}
	return t
}()

func tri(v int) uint8 {
	v %= 2 * rampLen
	if v < 0 {
		v += 2 * rampLen
	}
	return triangle[v]
}

func iabs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// paint fills p with one of four patterns chosen and shaped by h. Coordinates are normalised to
// 0..1023 along the longer side, so a pattern looks alike at every size.
func paint(p *image.Paletted, h uint64) {
	w, ht := p.Rect.Dx(), p.Rect.Dy()
	unit := max(w, ht)
	xn := make([]int, w)
	for x := range xn {
		xn[x] = x * 1024 / unit
	}
	a := int((h>>2)%7) - 3
	b := int((h>>5)%7) - 3
	if a == 0 && b == 0 {
		a = 2
	}
	cx, cy := int((h>>8)%1024), int((h>>18)%1024)
	div := 1 + int((h>>28)%5)
	cell := 32 + int((h>>34)%96)
	for y := range ht {
		yy := y * 1024 / unit
		row := p.Pix[y*p.Stride : y*p.Stride+w]
		switch h & 3 {
		case 0: // stripes
			base := yy * b * 2
			for x := range row {
				row[x] = tri((xn[x]*a*2 + base) / div)
			}
		case 1: // rings around (cx, cy)
			dy := yy - cy
			dy2 := dy * dy
			for x := range row {
				dx := xn[x] - cx
				row[x] = tri((dx*dx + dy2) / (128 * div))
			}
		case 2: // a checkerboard over a diagonal gradient
			ry := yy / cell
			for x := range row {
				row[x] = tri(((xn[x]/cell+ry)&1)*rampLen/2 + (xn[x]+yy)/div)
			}
		default: // diamonds around (cx, cy)
			ady := iabs(yy-cy) * (1 + iabs(b))
			for x := range row {
				row[x] = tri((iabs(xn[x]-cx)*(1+iabs(a)) + ady) / div)
			}
		}
	}
}

// Caption font: basicfont's 7x13 glyphs, scaled by whole pixels.
const (
	glyphW       = 6
	glyphH       = 13
	glyphAdvance = 7
	lineGap      = 3
	// glyphUnknown is basicfont's U+FFFD glyph, drawn for runes outside printable ASCII.
	glyphUnknown = 95
)

// glyphs holds each glyph as 13 rows of 6 bits (bit c set: column c is inked).
var glyphs = func() (g [96][glyphH]uint8) {
	f := basicfont.Face7x13
	for i := range g {
		for r := range glyphH {
			for c := range glyphW {
				if _, _, _, a := f.Mask.At(c, i*(f.Ascent+f.Descent)+r).RGBA(); a >= 0x8000 {
					g[i][r] |= 1 << c
				}
			}
		}
	}
	return g
}()

func glyphIndex(r rune) int {
	if r >= 0x20 && r < 0x7f {
		return int(r - 0x20)
	}
	return glyphUnknown
}

// canvas is what a caption is drawn on.
type canvas interface {
	// shade darkens r (already clipped to the image) for the caption panel.
	shade(r image.Rectangle)
	// ink paints r (already clipped) in the caption's text colour.
	ink(r image.Rectangle)
}

// palCanvas draws on a generated image.
type palCanvas struct{ p *image.Paletted }

func (c palCanvas) shade(r image.Rectangle) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := c.p.Pix[y*c.p.Stride+r.Min.X : y*c.p.Stride+r.Max.X]
		for i, v := range row {
			if v < rampLen {
				row[i] = v + rampLen
			}
		}
	}
}

func (c palCanvas) ink(r image.Rectangle) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := c.p.Pix[y*c.p.Stride+r.Min.X : y*c.p.Stride+r.Max.X]
		for i := range row {
			row[i] = idxWhite
		}
	}
}

// nrgbaCanvas draws on an image derived from a source image (variation, reference blends).
type nrgbaCanvas struct{ p *image.NRGBA }

func (c nrgbaCanvas) shade(r image.Rectangle) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := c.p.Pix[y*c.p.Stride+r.Min.X*4 : y*c.p.Stride+r.Max.X*4]
		for i := 0; i < len(row); i += 4 {
			a := int(row[i+3])
			row[i] = uint8(int(row[i]) * a / 255 * shadeMulSource >> 8)
			row[i+1] = uint8(int(row[i+1]) * a / 255 * shadeMulSource >> 8)
			row[i+2] = uint8(int(row[i+2]) * a / 255 * shadeMulSource >> 8)
			row[i+3] = 255
		}
	}
}

func (c nrgbaCanvas) ink(r image.Rectangle) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := c.p.Pix[y*c.p.Stride+r.Min.X*4 : y*c.p.Stride+r.Max.X*4]
		for i := range row {
			row[i] = 255
		}
	}
}

// captionLayout is the geometry of a caption on a w×h image.
type captionLayout struct {
	w, h  int
	scale int // font pixels per glyph pixel
	pad   int
	cols  int // characters per line
}

func layoutFor(w, h int) captionLayout {
	s := max(1, (w+h)/800)
	l := captionLayout{w: w, h: h, scale: s, pad: 2 * s}
	l.cols = max(1, (w-2*l.pad)/(glyphAdvance*s))
	return l
}

func (l captionLayout) lineHeight() int { return (glyphH + lineGap) * l.scale }

// maxLines is how many caption lines fit in the image's height.
func (l captionLayout) maxLines() int { return max(1, (l.h-2*l.pad)/l.lineHeight()) }

// draw shades the panel behind lines and writes them on c.
func (l captionLayout) draw(c canvas, lines []string) {
	if len(lines) == 0 {
		return
	}
	bounds := image.Rect(0, 0, l.w, l.h)
	lh := l.lineHeight()
	panel := image.Rect(0, 0, l.w, 2*l.pad+len(lines)*lh-lineGap*l.scale).Intersect(bounds)
	c.shade(panel)
	s := l.scale
	for li, line := range lines {
		y0 := l.pad + li*lh
		if y0 >= l.h {
			return
		}
		ci := 0
		for _, r := range line {
			x0 := l.pad + ci*glyphAdvance*s
			if x0 >= l.w {
				break
			}
			ci++
			g := &glyphs[glyphIndex(r)]
			for row, bits := range g {
				if bits == 0 {
					continue
				}
				y := y0 + row*s
				// Ink runs of set bits as one rectangle each.
				for c0 := 0; c0 < glyphW; {
					if bits&(1<<c0) == 0 {
						c0++
						continue
					}
					c1 := c0
					for c1 < glyphW && bits&(1<<c1) != 0 {
						c1++
					}
					if r := image.Rect(x0+c0*s, y, x0+c1*s, y+s).Intersect(bounds); !r.Empty() {
						c.ink(r)
					}
					c0 = c1
				}
			}
		}
	}
}

// wrap breaks text into lines of at most cols runes at white space (hard-breaking longer words),
// keeps at most maxLines and marks a cut with "...".
func wrap(text string, cols, maxLines int) []string {
	if maxLines <= 0 || cols <= 0 {
		return nil
	}
	var lines [][]rune
	var line, word []rune
	emitWord := func() {
		for len(word) > 0 {
			switch {
			case len(line) == 0 && len(word) <= cols:
				line, word = append(line, word...), nil
			case len(line) > 0 && len(line)+1+len(word) <= cols:
				line = append(append(line, ' '), word...)
				word = nil
			case len(line) > 0:
				lines, line = append(lines, line), nil
			default: // a word longer than a line
				lines = append(lines, append([]rune(nil), word[:cols]...))
				word = word[cols:]
			}
		}
	}
	// Only the first lines can show; bound the work for very long prompts.
	limit, seen, cut := (maxLines+1)*(cols+1), 0, false
	for _, r := range text {
		if seen == limit {
			cut = true
			break
		}
		seen++
		switch r {
		case ' ', '\t', '\n', '\r':
			emitWord()
		default:
			word = append(word, r)
		}
	}
	emitWord()
	if len(line) > 0 {
		lines = append(lines, line)
	}
	if len(lines) > maxLines {
		lines, cut = lines[:maxLines], true
	}
	if cut && len(lines) > 0 {
		last := lines[len(lines)-1]
		last = last[:min(len(last), max(0, cols-3)):min(len(last), max(0, cols-3))]
		lines[len(lines)-1] = append(last, '.', '.', '.')
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(l)
	}
	return out
}

// pngBuffers recycles the PNG encoder's internal buffers (its zlib writer among them).
type pngBuffers struct{ p sync.Pool }

func (b *pngBuffers) Get() *png.EncoderBuffer {
	e, _ := b.p.Get().(*png.EncoderBuffer)
	return e
}

func (b *pngBuffers) Put(e *png.EncoderBuffer) { b.p.Put(e) }

// encoder favours speed: sandbox images are flat patterns that compress well anyway.
var encoder = &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngBuffers{}}

// encodePNG encodes img; the same image always gives the same bytes.
func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	b := img.Bounds()
	buf.Grow(b.Dx()*b.Dy()/8 + 1024)
	if err := encoder.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("sandbox: encode png: %w", err)
	}
	return buf.Bytes(), nil
}
