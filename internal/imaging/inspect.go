package imaging

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/webp"
)

// DefaultMaxPixels is the pixel cap used when a caller passes maxPixels <= 0: 4096×4096.
const DefaultMaxPixels = 4096 * 4096

// Errors returned by this package. Match them with errors.Is.
var (
	// ErrNotImage means the data is not a PNG, JPEG, WebP or GIF image, or is corrupt.
	ErrNotImage = errors.New("imaging: not a valid PNG, JPEG, WebP or GIF image")
	// ErrTooManyPixels means the declared width×height exceeds the cap; the message gives both.
	ErrTooManyPixels = errors.New("imaging: image has too many pixels")
	// ErrMaskSize means a mask's dimensions differ from its image's.
	ErrMaskSize = errors.New("imaging: the mask is not the same size as the image")
	// ErrMaskEmpty means a mask marks no pixel to change.
	ErrMaskEmpty = errors.New("imaging: the mask marks nothing to change")
)

// Info describes an image, read from its header.
type Info struct {
	// Format is "png", "jpeg", "webp" or "gif".
	Format string
	// ContentType is the MIME type: "image/png", "image/jpeg", "image/webp" or "image/gif".
	ContentType string
	// Width and Height are the declared dimensions (for GIF, the logical screen).
	Width, Height int
}

// Pixels returns Width×Height.
func (i Info) Pixels() int { return i.Width * i.Height }

type format struct {
	name, contentType string
	decodeConfig      func(io.Reader) (image.Config, error)
	decode            func(io.Reader) (image.Image, error)
}

var (
	fmtPNG  = &format{"png", "image/png", png.DecodeConfig, png.Decode}
	fmtJPEG = &format{"jpeg", "image/jpeg", jpeg.DecodeConfig, jpeg.Decode}
	fmtGIF  = &format{"gif", "image/gif", gif.DecodeConfig, gif.Decode}
	fmtWebP = &format{"webp", "image/webp", webp.DecodeConfig, webp.Decode}
)

const pngSignature = "\x89PNG\r\n\x1a\n"

// sniff identifies the format by its magic bytes. Only these four formats are ever decoded,
// whatever other decoders the program registers with package image.
func sniff(data []byte) *format {
	switch {
	case bytes.HasPrefix(data, []byte(pngSignature)):
		return fmtPNG
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		return fmtJPEG
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return fmtGIF
	case len(data) >= 16 && string(data[0:4]) == "RIFF" && string(data[8:12]) == "WEBP" &&
		string(data[12:15]) == "VP8":
		return fmtWebP
	}
	return nil
}

// Inspect identifies data's format and reads its dimensions from the header only. It refuses
// an unknown or corrupt header with ErrNotImage, and a declared width×height above maxPixels
// (DefaultMaxPixels when maxPixels <= 0) with ErrTooManyPixels, without decoding any pixel.
func Inspect(data []byte, maxPixels int) (Info, error) {
	info, _, err := inspect(data, maxPixels)
	return info, err
}

func inspect(data []byte, maxPixels int) (Info, *format, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	f := sniff(data)
	if f == nil {
		return Info{}, nil, fmt.Errorf("%w: unrecognised format", ErrNotImage)
	}
	w, h, err := decodeSize(f, data)
	if err != nil {
		return Info{}, nil, fmt.Errorf("%w: bad %s header: %v", ErrNotImage, f.name, err)
	}
	if w <= 0 || h <= 0 {
		return Info{}, nil, fmt.Errorf("%w: the %s header declares %dx%d", ErrNotImage, f.name, w, h)
	}
	if w > maxPixels/h {
		return Info{}, nil, fmt.Errorf("%w: %dx%d is %d pixels, the limit is %d", ErrTooManyPixels, w, h, int64(w)*int64(h), maxPixels)
	}
	return Info{Format: f.name, ContentType: f.contentType, Width: w, Height: h}, f, nil
}

// Decode inspects data (see Inspect), then decodes it. A GIF decodes to its first frame placed
// on its logical screen. The decoded image's bounds are (0,0)-(Width,Height).
func Decode(data []byte, maxPixels int) (image.Image, Info, error) {
	info, f, err := inspect(data, maxPixels)
	if err != nil {
		return nil, Info{}, err
	}
	img, err := decodeAs(f, data, info)
	if err != nil {
		return nil, Info{}, err
	}
	return img, info, nil
}

func decodeAs(f *format, data []byte, info Info) (image.Image, error) {
	var img image.Image
	err := guard(func() (err error) {
		img, err = f.decode(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: corrupt %s data: %v", ErrNotImage, f.name, err)
	}
	full := image.Rect(0, 0, info.Width, info.Height)
	if b := img.Bounds(); b != full {
		if f != fmtGIF || !b.In(full) {
			return nil, fmt.Errorf("%w: %s decoded to %v, the header declares %dx%d", ErrNotImage, f.name, b, info.Width, info.Height)
		}
		// A GIF frame may cover part of the screen; the rest is transparent.
		canvas := image.NewNRGBA(full)
		draw.Draw(canvas, b, img, b.Min, draw.Src)
		img = canvas
	}
	return img, nil
}

// guard turns a decoder panic on hostile input into an error.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return fn()
}

// decodeSize returns the width and height f's DecodeConfig reads from data, and fails where it
// fails. A PNG that is not paletted is read by pngSize instead, without allocating
// (png.DecodeConfig takes about 1 KB, a reader and a CRC hasher, on every b64_json answer); a
// paletted one goes through png.DecodeConfig, which reads and checks the palette too (its colour
// model holds it).
func decodeSize(f *format, data []byte) (w, h int, err error) {
	if f == fmtPNG && !(len(data) > 25 && data[25] == 3) { // the IHDR's colour type: indexed
		return pngSize(data)
	}
	err = guard(func() error {
		cfg, err := f.decodeConfig(bytes.NewReader(data))
		w, h = cfg.Width, cfg.Height
		return err
	})
	return w, h, err
}

// pngSize reads a PNG's dimensions from its IHDR chunk, which must follow the signature, and
// checks it as png.DecodeConfig does: its length and CRC, a width and height from 1 to 2^31-1,
// a bit depth its colour type allows, and compression, filter and interlace methods PNG defines.
// That is all png.DecodeConfig reads of an image that is not paletted.
func pngSize(data []byte) (w, h int, err error) {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, length, type, data, CRC
	if len(data) < ihdrEnd {
		return 0, 0, io.ErrUnexpectedEOF
	}
	if string(data[:8]) != pngSignature {
		return 0, 0, errors.New("png: not a PNG signature")
	}
	c := data[8:ihdrEnd]
	if binary.BigEndian.Uint32(c) != 13 || string(c[4:8]) != "IHDR" {
		return 0, 0, errors.New("png: the first chunk is not a 13-byte IHDR")
	}
	if crc32.ChecksumIEEE(c[4:21]) != binary.BigEndian.Uint32(c[21:]) {
		return 0, 0, errors.New("png: IHDR checksum mismatch")
	}
	w32, h32 := binary.BigEndian.Uint32(c[8:]), binary.BigEndian.Uint32(c[12:])
	depth, colour, compression, filter, interlace := c[16], c[17], c[18], c[19], c[20]
	if w32 == 0 || h32 == 0 || w32 > math.MaxInt32 || h32 > math.MaxInt32 {
		return 0, 0, fmt.Errorf("png: dimensions %dx%d", w32, h32)
	}
	var allowed uint32 // the bit depths the colour type allows, as a set of 1<<depth
	if int(colour) < len(pngDepths) {
		allowed = pngDepths[colour]
	}
	if depth > 16 || allowed&(1<<depth) == 0 {
		return 0, 0, fmt.Errorf("png: bit depth %d with colour type %d", depth, colour)
	}
	if compression != 0 || filter != 0 || interlace > 1 {
		return 0, 0, fmt.Errorf("png: compression, filter or interlace method %d, %d, %d", compression, filter, interlace)
	}
	return int(w32), int(h32), nil
}

// pngDepths are the bit depths each PNG colour type allows (as sets of 1<<depth): greyscale,
// none, truecolour, indexed, greyscale with alpha, none, truecolour with alpha.
var pngDepths = [...]uint32{1<<1 | 1<<2 | 1<<4 | 1<<8 | 1<<16, 0, 1<<8 | 1<<16, 1<<1 | 1<<2 | 1<<4 | 1<<8, 1<<8 | 1<<16, 0, 1<<8 | 1<<16}

// inspectHeads are how many leading bytes InspectBase64 decodes in turn, -1 standing for all of
// them: PNG, GIF and WebP headers are in the first few dozen bytes (a paletted PNG's palette
// may follow), a JPEG's frame header follows its APP segments (EXIF, ICC profiles: up to 64 KB
// each), rarely further.
var inspectHeads = [...]int{64, 4 << 10, 128 << 10, -1}

// InspectBase64 is Inspect for an image held as standard base64 text (the b64_json of an
// upstream's answer, kept to be written out as it came): it decodes only the image's head, a
// few KB, and a longer head (at worst all of it) only when the header lies further. It does not
// check that the rest of text is base64.
func InspectBase64(text []byte, maxPixels int) (Info, error) {
	for _, n := range inspectHeads {
		chars := len(text)
		if n >= 0 && (n+2)/3*4 < len(text) {
			chars = (n + 2) / 3 * 4
		}
		head := make([]byte, base64.StdEncoding.DecodedLen(chars))
		k, err := base64.StdEncoding.Decode(head, text[:chars])
		if err != nil {
			return Info{}, fmt.Errorf("%w: not base64: %v", ErrNotImage, err)
		}
		head = head[:k]
		info, err := Inspect(head, maxPixels)
		if err == nil || chars == len(text) || sniff(head) == nil || errors.Is(err, ErrTooManyPixels) {
			return info, err
		}
	}
	panic("unreachable")
}
