package httpx

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
)

// IsDataURI reports whether s starts with the "data:" scheme (case-insensitively).
func IsDataURI(s string) bool {
	return len(s) >= 5 && strings.EqualFold(s[:5], "data:")
}

// DecodeDataURI decodes a base64 image data URI ("data:image/png;base64,iVBOR...") without
// touching the network. The payload may omit padding and may contain line breaks. A payload
// that would decode to more than maxBytes is refused with ErrTooLarge before anything is
// decoded; maxBytes <= 0 means DefaultMaxImageBytes. The returned content type is sniffed from
// the decoded bytes (the declared one only has to be an image type); bytes that are not a PNG,
// JPEG, WebP or GIF image give ErrNotImage. Other problems give ErrBadDataURI.
func DecodeDataURI(uri string, maxBytes int64) ([]byte, string, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxImageBytes
	}
	if !IsDataURI(uri) {
		return nil, "", fmt.Errorf("%w: missing the data: scheme", ErrBadDataURI)
	}
	header, payload, ok := strings.Cut(uri[5:], ",")
	if !ok {
		return nil, "", fmt.Errorf("%w: missing the comma before the payload", ErrBadDataURI)
	}
	mediaType, params, _ := strings.Cut(header, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	if !strings.HasPrefix(mediaType, "image/") {
		return nil, "", fmt.Errorf("%w: media type %q is not an image type", ErrBadDataURI, truncate(mediaType, 40))
	}
	isBase64 := false
	for p := range strings.SplitSeq(params, ";") {
		if strings.EqualFold(strings.TrimSpace(p), "base64") {
			isBase64 = true
		}
	}
	if !isBase64 {
		return nil, "", fmt.Errorf("%w: only base64 data URIs are accepted", ErrBadDataURI)
	}

	if strings.Trim(payload, "\r\n") == "" {
		return nil, "", fmt.Errorf("%w: empty payload", ErrBadDataURI)
	}
	// The exact decoded size (line breaks and padding do not count) is checked before anything
	// is decoded, so an oversized payload costs no allocation.
	if size := int64(decodedLen(payload)); size > maxBytes {
		return nil, "", fmt.Errorf("%w: the data URI holds %d bytes, the limit is %d", ErrTooLarge, size, maxBytes)
	}
	data, err := decodeBase64(payload)
	if err != nil {
		return nil, "", err
	}
	ct, err := sniffImage(data)
	if err != nil {
		return nil, "", err
	}
	return data, ct, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// decodedLen is the number of bytes a base64 payload decodes to, ignoring line breaks and padding.
func decodedLen(payload string) int {
	n := len(payload) - strings.Count(payload, "\n") - strings.Count(payload, "\r")
	for i := len(payload) - 1; i >= 0 && n > 0; i-- {
		c := payload[i]
		if c == '=' {
			n--
		} else if c != '\r' && c != '\n' {
			break
		}
	}
	return n * 3 / 4
}

// decodeBase64 decodes standard base64, with or without padding, skipping line breaks. It works
// through a small chunk buffer so that the payload string is never copied whole; chunks are a
// multiple of 4 significant characters, so each decodes on its own.
func decodeBase64(payload string) ([]byte, error) {
	data := make([]byte, decodedLen(payload))
	var chunk [4096]byte
	k, out := 0, 0
	decode := func(final bool) error {
		enc := base64.StdEncoding
		if final && k%4 != 0 && bytes.IndexByte(chunk[:k], '=') < 0 {
			enc = base64.RawStdEncoding
		}
		if !final && chunk[k-1] == '=' {
			return fmt.Errorf("%w: bad base64: data after padding", ErrBadDataURI)
		}
		n, err := enc.Decode(data[out:], chunk[:k])
		if err != nil {
			return fmt.Errorf("%w: bad base64: %v", ErrBadDataURI, err)
		}
		out += n
		k = 0
		return nil
	}
	err := forEachRun(payload, func(run string) error {
		for len(run) > 0 {
			if k == len(chunk) { // more follows, so this chunk is not the last
				if err := decode(false); err != nil {
					return err
				}
			}
			c := copy(chunk[k:], run)
			run = run[c:]
			k += c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if k > 0 {
		if err := decode(true); err != nil {
			return nil, err
		}
	}
	return data[:out], nil
}

// forEachRun calls fn with every non-empty run of s that holds no '\r' or '\n'.
func forEachRun(s string, fn func(string) error) error {
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		for len(line) > 0 {
			run := line
			if j := strings.IndexByte(line, '\r'); j >= 0 {
				run, line = line[:j], line[j+1:]
			} else {
				line = ""
			}
			if run != "" {
				if err := fn(run); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
