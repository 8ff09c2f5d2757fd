package httpx

import (
	"bytes"
	"encoding/base64"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestDecodeDataURI(t *testing.T) {
	img := testPNG(t)
	std := base64.StdEncoding.EncodeToString(img)
	raw := base64.RawStdEncoding.EncodeToString(img)
	var wrapped strings.Builder // MIME-style line breaks every 76 characters
	for i := 0; i < len(std); i += 76 {
		wrapped.WriteString(std[i:min(i+76, len(std))])
		wrapped.WriteString("\r\n")
	}
	ok := []string{
		"data:image/png;base64," + std,
		"DATA:IMAGE/PNG;BASE64," + std,
		"data:image/png;base64," + raw,
		"data:image/png;base64," + wrapped.String(),
		"data:image/jpeg;base64," + std, // declared type is only a hint; the sniffed one wins
		"data:image/png;name=x.png;base64," + std,
	}
	for _, u := range ok {
		data, ct, err := DecodeDataURI(u, 1<<20)
		if err != nil || ct != "image/png" || !bytes.Equal(data, img) {
			t.Errorf("DecodeDataURI(%.40q…) = %d bytes %q, %v", u, len(data), ct, err)
		}
	}

	bad := map[string]error{
		"image/png;base64," + std:                    ErrBadDataURI, // no scheme
		"data:image/png;base64":                      ErrBadDataURI, // no comma
		"data:image/png," + std:                      ErrBadDataURI, // not base64
		"data:text/plain;base64," + std:              ErrBadDataURI,
		"data:;base64," + std:                        ErrBadDataURI,
		"data:image/png;base64,":                     ErrBadDataURI,
		"data:image/png;base64,iVBO R==":             ErrBadDataURI,
		"data:image/png;base64,AAAA=AAAA":            ErrBadDataURI,
		"data:image/png;base64,!!!!":                 ErrBadDataURI,
		"data:image/png;base64,PGh0bWw+PC9odG1sPg==": ErrNotImage, // "<html></html>"
	}
	for u, want := range bad {
		if _, _, err := DecodeDataURI(u, 1<<20); !errors.Is(err, want) {
			t.Errorf("DecodeDataURI(%.50q) = %v, want %v", u, err, want)
		}
	}
}

func TestDecodeDataURISizeCap(t *testing.T) {
	img := testPNG(t)
	u := "data:image/png;base64," + base64.StdEncoding.EncodeToString(img)
	if _, _, err := DecodeDataURI(u, int64(len(img))); err != nil {
		t.Errorf("exactly the cap: %v", err)
	}
	if _, _, err := DecodeDataURI(u, int64(len(img))-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over the cap: %v, want ErrTooLarge", err)
	}
	// A huge payload is refused before decoding: no allocation proportional to it.
	huge := "data:image/png;base64," + strings.Repeat("A", 40<<20)
	if n := allocatedBytes(func() {
		if _, _, err := DecodeDataURI(huge, 1<<20); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("huge: %v", err)
		}
	}); n > 64<<10 {
		t.Errorf("refusing a 40 MB data URI allocated %d bytes", n)
	}
	for _, s := range []string{"", "AA", "AAA", "AAAA", "AA==", "AAA=", "AAAA\r\nAA==\r\n", "AAAAAA"} {
		want := len(base64Decode(t, s))
		if got := decodedLen(s); got != want {
			t.Errorf("decodedLen(%q) = %d, want %d", s, got, want)
		}
	}
}

func base64Decode(t *testing.T, s string) []byte {
	s = strings.NewReplacer("\r", "", "\n", "").Replace(s)
	enc := base64.StdEncoding
	if !strings.Contains(s, "=") {
		enc = base64.RawStdEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b
}

func TestDecodeDataURILarge(t *testing.T) {
	// Larger than the 4 KiB decode chunk, with line breaks at odd places.
	img := append(testPNG(t), bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 3000)...)
	std := base64.StdEncoding.EncodeToString(img)
	wrapped := std[:4095] + "\n" + std[4095:9000] + "\r\n" + std[9000:]
	data, _, err := DecodeDataURI("data:image/png;base64,"+wrapped, 1<<20)
	if err != nil || !bytes.Equal(data, img) {
		t.Fatalf("got %d bytes, %v", len(data), err)
	}

	// Padding exactly at the end of a full chunk: fine when it is the end of the payload...
	img = img[:3070]
	std = base64.StdEncoding.EncodeToString(img)
	if len(std) != 4096 || !strings.HasSuffix(std, "==") {
		t.Fatalf("setup: %d characters", len(std))
	}
	if data, _, err = DecodeDataURI("data:image/png;base64,"+std+"\r\n", 1<<20); err != nil || !bytes.Equal(data, img) {
		t.Errorf("padding at a chunk boundary: %d bytes, %v", len(data), err)
	}
	// ...and an error when more data follows.
	if _, _, err = DecodeDataURI("data:image/png;base64,"+std+"AAAA", 1<<20); !errors.Is(err, ErrBadDataURI) {
		t.Errorf("data after padding at a chunk boundary: %v, want ErrBadDataURI", err)
	}
}

func FuzzDecodeDataURI(f *testing.F) {
	img := testPNG(f)
	f.Add("data:image/png;base64," + base64.StdEncoding.EncodeToString(img))
	f.Add("data:image/png;base64," + base64.RawStdEncoding.EncodeToString(img))
	f.Add("data:image/gif;base64,R0lGODlhAQABAAAAACw=")
	f.Add("data:image/png;base64,AAAA\r\nAA==")
	f.Add("data:,")
	f.Add("data:image/png;base64,====")
	f.Fuzz(func(t *testing.T, u string) {
		const max = 1 << 16
		data, ct, err := DecodeDataURI(u, max)
		if err != nil {
			if !errors.Is(err, ErrBadDataURI) && !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(data) > max || !imageTypes[ct] {
			t.Fatalf("accepted %d bytes of %q", len(data), ct)
		}
		// What was accepted is what the standard decoder makes of the payload.
		_, payload, _ := strings.Cut(u, ",")
		payload = strings.NewReplacer("\r", "", "\n", "").Replace(payload)
		want, err1 := base64.StdEncoding.DecodeString(payload)
		if err1 != nil {
			want, err1 = base64.RawStdEncoding.DecodeString(payload)
		}
		if err1 != nil || !bytes.Equal(want, data) {
			t.Fatalf("decoded %x, the standard decoder says %x, %v", data, want, err1)
		}
	})
}

// allocatedBytes reports how many bytes fn allocated on the heap.
func allocatedBytes(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
