package sandbox

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imagegw/imagegw/providers"
)

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		text    string
		cols, n int
		want    []string
	}{
		{"a cat on a mat", 20, 3, []string{"a cat on a mat"}},
		{"a cat on a mat", 8, 3, []string{"a cat on", "a mat"}},
		{"a cat on a mat", 8, 1, []string{"a cat..."}},
		{"abcdefghijkl", 5, 3, []string{"abcde", "fghij", "kl"}},
		{"abcdefghijklmnop", 5, 3, []string{"abcde", "fghij", "kl..."}},
		{"  spaced\tout\nwords  ", 40, 2, []string{"spaced out words"}},
		{"", 10, 2, []string{}},
		{"狐狸 fox", 6, 1, []string{"狐狸 fox"}},
		{"x", 2, 0, nil},
	} {
		got := wrap(tc.text, tc.cols, tc.n)
		if !slices.Equal(got, tc.want) {
			t.Errorf("wrap(%q, %d, %d) = %q, want %q", tc.text, tc.cols, tc.n, got, tc.want)
		}
	}
	// A very long prompt is cut cheaply and marked.
	long := strings.Repeat("word ", 100000)
	got := wrap(long, 40, 6)
	if len(got) != 6 || !strings.HasSuffix(got[5], "...") {
		t.Fatalf("long prompt wrapped into %q", got)
	}
}

func TestRatioSize(t *testing.T) {
	for _, r := range aspectRatios {
		s, ok := ratioSize(r)
		if !ok || s.W%8 != 0 || s.H%8 != 0 || max(s.W, s.H) != 1024 || min(s.W, s.H) < minSide {
			t.Errorf("ratio %s gives %v", r, s)
		}
	}
	if s, _ := ratioSize("16:9"); s != (providers.Size{W: 1024, H: 576}) {
		t.Errorf("16:9 gives %v", s)
	}
	if s, _ := ratioSize("1:100"); s != (providers.Size{W: 64, H: 1024}) {
		t.Errorf("1:100 gives %v, want the minimum side", s)
	}
	for _, bad := range []string{"", "16", "a:b", "0:1", "-1:2"} {
		if _, ok := ratioSize(bad); ok {
			t.Errorf("ratio %q accepted", bad)
		}
	}
}

func TestStandardSizesFitTheRule(t *testing.T) {
	for _, m := range catalog() {
		for _, s := range standardSizes {
			if err := checkSize(&m, &providers.Request{Width: s.W, Height: s.H}); err != nil {
				t.Errorf("%s refuses OpenAI's %s: %v", m.ID, s, err)
			}
		}
	}
}

func TestParseDirectives(t *testing.T) {
	d, err := parseDirectives("cats [sandbox:fail=upstream_timeout] [sandbox:withhold=2][sandbox:latency=1.5s] dogs [sandbox but not a directive]")
	if err != nil {
		t.Fatal(err)
	}
	if d.fail != providers.KindUpstreamTimeout || d.withhold != 2 || d.latency != 1500*time.Millisecond {
		t.Fatalf("directives = %+v", d)
	}
	if d, err := parseDirectives("plain prompt [with brackets]"); err != nil || d != (directives{}) {
		t.Fatalf("plain prompt: %+v, %v", d, err)
	}
	_, err = parseDirectives("[sandbox:" + strings.Repeat("x", 5000) + "]")
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("a huge directive gave %v", err)
	}
}

func TestHueAngle(t *testing.T) {
	seen := map[int]bool{}
	for s := range int64(500) {
		a := hueAngle(s)
		if a <= 0 || a >= 360 || a%15 != 0 {
			t.Fatalf("hue angle %d for seed %d", a, s)
		}
		seen[a] = true
	}
	if len(seen) != 23 {
		t.Fatalf("%d distinct angles, want 23", len(seen))
	}
	// The rotation matrix of a full turn is the identity.
	if m := hueMatrix(360); m != [9]int{4096, 0, 0, 0, 4096, 0, 0, 0, 4096} {
		t.Fatalf("hueMatrix(360) = %v", m)
	}
}

func TestPatternsDiffer(t *testing.T) {
	// Each of the four patterns paints the whole ramp range somewhere and differs from the others.
	var prev []byte
	for kind := range uint64(4) {
		p := image.NewPaletted(image.Rect(0, 0, 128, 128), newPalette(kind, ""))
		paint(p, kind|0xabcdef00)
		if bytes.Equal(p.Pix, prev) {
			t.Fatalf("pattern %d equals the previous one", kind)
		}
		lo, hi := slices.Min(p.Pix), slices.Max(p.Pix)
		if hi >= rampLen || hi-lo < 10 {
			t.Fatalf("pattern %d uses ramp indexes %d..%d", kind, lo, hi)
		}
		prev = p.Pix
	}
}

func TestGlyphs(t *testing.T) {
	if glyphs[0] != [glyphH]uint8{} {
		t.Fatal("space is not blank")
	}
	for _, r := range "Aa0|" {
		if glyphs[glyphIndex(r)] == [glyphH]uint8{} {
			t.Fatalf("glyph %q is blank", r)
		}
	}
	if glyphIndex('狐') != glyphUnknown || glyphs[glyphUnknown] == [glyphH]uint8{} {
		t.Fatal("runes outside ASCII do not draw the replacement glyph")
	}
}

// FuzzParseDirectives: any prompt parses or fails with a short client-safe KindInvalidRequest.
func FuzzParseDirectives(f *testing.F) {
	for _, s := range []string{"", "cat", "[sandbox:fail=content_policy]", "[sandbox:withhold=2][sandbox:latency=10ms]",
		"[sandbox:", "[sandbox:=]", "[sandbox:latency=9999999999h]", "[sandbox:withhold=1][sandbox:withhold=1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prompt string) {
		d, err := parseDirectives(prompt)
		if err != nil {
			pe, ok := err.(*providers.Error)
			if !ok || pe.Kind != providers.KindInvalidRequest || pe.Param != "prompt" || len(pe.Message) > 400 {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if d.withhold < 0 || d.withhold > maxN || d.latency < 0 || d.latency > maxDirectiveLatency || (d.fail != "" && !knownKind(d.fail)) {
			t.Fatalf("directives out of range: %+v", d)
		}
	})
}

// FuzzDecodeImage: arbitrary bytes as a source image and mask never panic, and an image that
// decodes can be sampled at any output size.
func FuzzDecodeImage(f *testing.F) {
	var buf bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	img.SetNRGBA(1, 1, color.NRGBA{1, 2, 3, 0})
	_ = png.Encode(&buf, img)
	f.Add(buf.Bytes(), uint8(5), uint8(7))
	pal := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Transparent, color.White})
	buf.Reset()
	_ = png.Encode(&buf, pal)
	f.Add(buf.Bytes(), uint8(1), uint8(1))
	f.Add([]byte("\x89PNG\r\n\x1a\n"), uint8(3), uint8(3))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), uint8(3), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, w, h uint8) {
		img, err := decodeImage("image", providers.Image{Data: data})
		if err != nil {
			pe, ok := err.(*providers.Error)
			if !ok || (pe.Kind != providers.KindInvalidRequest && pe.Kind != providers.KindTooLarge) || pe.Param != "image" || !utf8.ValidString(pe.Message) {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if b := img.Bounds(); b.Dx()*b.Dy() > 1<<16 {
			return // keep fuzzing iterations fast
		}
		ow, oh := int(w)%64+1, int(h)%64+1
		n := toNRGBA(img, ow, oh)
		if n.Rect.Dx() != ow || n.Rect.Dy() != oh {
			t.Fatalf("sampled to %v", n.Rect)
		}
		if a := transparentArea(img, ow, oh); len(a) != ow*oh {
			t.Fatalf("area has %d pixels", len(a))
		}
	})
}

// FuzzWrap: wrapped lines never exceed the column count (plus the "..." mark) or the line count.
func FuzzWrap(f *testing.F) {
	f.Add("a cat on a mat", 8, 2)
	f.Add("abcdefghijklmnop", 5, 3)
	f.Fuzz(func(t *testing.T, text string, cols, n int) {
		cols, n = cols%200, n%20
		lines := wrap(text, cols, n)
		if len(lines) > max(n, 0) {
			t.Fatalf("%d lines, want at most %d", len(lines), n)
		}
		for _, l := range lines {
			if c := utf8.RuneCountInString(l); c > max(cols, 3) {
				t.Fatalf("line %q has %d runes, cols %d", l, c, cols)
			}
		}
	})
}
