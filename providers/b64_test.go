package providers

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

func TestValidBase64(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "aGk=": true, "aG==": true, "aGkh": true, "QUJD+/90": true,
		"aGk": false, "a===": false, "aGk=aGk=": false, "aG k=": false, "aGk-": false, "aGk_": false,
		"aGk\n": false, "aGk\x80": false, "=aGk": false, "\xc1Gk=": false,
	} {
		if got := ValidBase64([]byte(s)); got != want {
			t.Errorf("ValidBase64(%q) = %v", s, got)
		}
	}
	// Every byte value at every position of a long text, against encoding/base64.
	text := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("imagegw!"), 30)))
	for pos := 0; pos < 40; pos++ {
		for c := 0; c < 256; c++ {
			s := bytes.Clone(text)
			s[pos] = byte(c)
			if got, want := ValidBase64(s), isBase64Char(byte(c)); got != want {
				t.Fatalf("byte %#x at %d: ValidBase64 %v", c, pos, got)
			}
		}
	}
}

// TestBase64RunBlocks checks the AVX2 blocks (where the machine has them) and the portable loops
// against a byte-by-byte scan: at every position of texts of every length up to 136 (four
// blocks and a tail), each byte at an edge of the alphabet's ranges (and some that only the
// folding of case or the sign of a byte could let through); every byte value in a text of 96.
func TestBase64RunBlocks(t *testing.T) {
	t.Logf("AVX2: %v", hasAVX2)
	text := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("imagegw?"), 20)))
	edges := []byte("\x00\n\x0b\x0f\x10\x19\x1a\"*+,-./09:;=@AZ[\\`az{\x7f\x80\x8b\xab\xaf\xc1\xe1\xfa\xff")
	all := make([]byte, 256)
	for c := range all {
		all[c] = byte(c)
	}
	for n := 0; n <= 136; n++ {
		bad := edges
		if n == 96 {
			bad = all
		}
		for pos := 0; pos < n; pos++ {
			for _, c := range bad {
				s := bytes.Clone(text[:n])
				s[pos] = c
				want := n
				if !isBase64Char(c) {
					want = pos
				}
				if got := base64Run(s); got != want {
					t.Fatalf("length %d, byte %#x at %d: base64Run = %d, want %d", n, c, pos, got, want)
				}
				if got := base64RunFrom(s, 0); got != want {
					t.Fatalf("length %d, byte %#x at %d: the portable loops = %d, want %d", n, c, pos, got, want)
				}
				if b := base64RunBlocks(s); b > want || b%32 != 0 {
					t.Fatalf("length %d, byte %#x at %d: the blocks claim %d bytes", n, c, pos, b)
				}
			}
		}
	}
}

// FuzzValidBase64 checks ValidBase64 against encoding/base64, which also ignores line breaks.
func FuzzValidBase64(f *testing.F) {
	for _, s := range []string{"aGk=", "aG==", "a===", "QUJD+/90QUJD+/90QUJD+/90QUJD+/90QUJD", "aGk\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		_, err := base64.StdEncoding.DecodeString(string(s))
		want := err == nil && !bytes.ContainsAny(s, "\r\n")
		if got := ValidBase64(s); got != want {
			t.Fatalf("ValidBase64(%q) = %v, encoding/base64: %v", s, got, err)
		}
	})
}

func TestDecodeBase64Head(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100)
	text := []byte(base64.StdEncoding.EncodeToString(data))
	for _, n := range []int{0, 1, 2, 3, 512, 999, 1000, 5000} {
		head, err := DecodeBase64Head(text, n)
		if err != nil || len(head) < min(n, len(data)) || !bytes.HasPrefix(data, head) {
			t.Errorf("head %d: %d bytes, %v", n, len(head), err)
		}
	}
}

func text2MB() []byte {
	data := make([]byte, 2<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return []byte(base64.StdEncoding.EncodeToString(data))
}

// BenchmarkValidBase64 checks ~2.8 MB of base64 text (a 2 MB image); BenchmarkDecodeBase64 is
// what decoding it costs, for comparison.
func BenchmarkValidBase64(b *testing.B) {
	text := text2MB()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if !ValidBase64(text) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkDecodeBase64(b *testing.B) {
	text := text2MB()
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := base64.StdEncoding.Decode(dst, text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIndexByte(b *testing.B) {
	text := text2MB()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if bytes.IndexByte(text, '"') >= 0 {
			b.Fatal("quote")
		}
	}
}
