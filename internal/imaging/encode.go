package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"sync"
)

// encoderBuffers reuses the PNG encoder's internal buffers (zlib writer, row buffers).
type encoderBuffers struct{ pool sync.Pool }

func (p *encoderBuffers) Get() *png.EncoderBuffer {
	b, _ := p.pool.Get().(*png.EncoderBuffer)
	return b
}

func (p *encoderBuffers) Put(b *png.EncoderBuffer) { p.pool.Put(b) }

var (
	pngBuffers  = &encoderBuffers{}
	pngEncoder  = &png.Encoder{CompressionLevel: png.DefaultCompression, BufferPool: pngBuffers}
	maskEncoder = &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &encoderBuffers{}}

	outBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// maxPooledOutput is the largest output buffer kept for reuse.
const maxPooledOutput = 8 << 20

// EncodePNG encodes img as PNG with pooled encoder state and a pooled output buffer; the returned
// slice is freshly allocated at its final size and owned by the caller.
func EncodePNG(img image.Image) ([]byte, error) {
	return encodeWith(pngEncoder, img)
}

// EncodePNGTo streams img as PNG to w, reusing pooled encoder state.
func EncodePNGTo(w io.Writer, img image.Image) error {
	if err := pngEncoder.Encode(w, img); err != nil {
		return fmt.Errorf("imaging: encode png: %w", err)
	}
	return nil
}

func encodeWith(enc *png.Encoder, img image.Image) ([]byte, error) {
	buf := outBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledOutput {
			outBuffers.Put(buf)
		}
	}()
	if err := enc.Encode(buf, img); err != nil {
		return nil, fmt.Errorf("imaging: encode png: %w", err)
	}
	return bytes.Clone(buf.Bytes()), nil
}
