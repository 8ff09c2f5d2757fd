// Package imaging handles untrusted images safely: it identifies PNG, JPEG, WebP and GIF data by
// its magic bytes, reads only the header to learn the dimensions, and refuses images whose
// declared width×height exceeds a pixel cap before anything is decoded, so a small file that
// declares a huge canvas (a decompression bomb) costs no memory. It also converts edit masks
// between OpenAI's convention (fully transparent pixels mark the area to change) and Ideogram's
// (black marks the area to change, white keeps), and encodes PNGs with pooled buffers.
//
// Errors are typed: ErrNotImage, ErrTooManyPixels, ErrMaskSize and ErrMaskEmpty; match them with
// errors.Is. Their messages are safe to show to the client who sent the image.
//
// Size rules (snapping a requested size to what a model accepts) live in the front door, not here.
package imaging
