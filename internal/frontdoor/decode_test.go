package frontdoor

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/providers"
)

// endless is a body of n bytes: prefix, then filler repeated; it counts what was read of it.
type endless struct {
	prefix string
	filler string
	n, off int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.off >= e.n {
		return 0, io.EOF
	}
	i := 0
	for i < len(p) && e.off < e.n {
		if e.off < int64(len(e.prefix)) {
			p[i] = e.prefix[e.off]
		} else {
			p[i] = e.filler[(e.off-int64(len(e.prefix)))%int64(len(e.filler))]
		}
		i++
		e.off++
	}
	return i, nil
}

func decodeBody(t *testing.T, body io.Reader) (*apiRequest, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/images/generations", body)
	r.Header.Set("Content-Type", "application/json")
	return decodeJSON(r, providers.OpGenerate, 1<<20)
}

// A hostile body is refused as soon as it is seen to be hostile: the rest of it is never read,
// so what it costs the gateway does not grow with its size.
func TestDecodeJSONStopsReadingHostileBodies(t *testing.T) {
	const size = 64 << 20
	for _, tc := range []struct {
		name   string
		body   *endless
		kind   providers.Kind
		param  string
		readAt int64 // at most this much of the body is read
	}{
		{"unknown fields", &endless{prefix: `{"model":"m","aaaa":1,`, filler: `"x":1,`, n: size},
			providers.KindInvalidRequest, "aaaa", 64 << 10},
		{"a huge prompt", &endless{prefix: `{"model":"m","prompt":"`, filler: "a", n: size},
			providers.KindTooLarge, "prompt", maxTextField + 64<<10},
		{"a huge key", &endless{prefix: `{"`, filler: "k", n: size},
			providers.KindTooLarge, "", maxTextField + 64<<10},
		{"whitespace", &endless{prefix: `{`, filler: " ", n: size},
			providers.KindTooLarge, "", maxTextField + 64<<10},
		{"a repeated field", &endless{prefix: `{"model":"m","model":"n",`, filler: `"prompt":"p",`, n: size},
			providers.KindInvalidRequest, "model", 64 << 10},
		{"deep nesting in extra", &endless{prefix: `{"extra":`, filler: "[", n: size},
			providers.KindInvalidRequest, "", maxTextField + 64<<10}, // the decoder's depth limit
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeBody(t, tc.body)
			pe, ok := err.(*providers.Error)
			if !ok {
				t.Fatalf("error %v (%T), want a *providers.Error", err, err)
			}
			if pe.Kind != tc.kind || pe.Param != tc.param {
				t.Errorf("kind %s param %q (%s), want %s %q", pe.Kind, pe.Param, pe.Message, tc.kind, tc.param)
			}
			if tc.body.off > tc.readAt {
				t.Errorf("read %d bytes of the body before refusing it, want at most %d", tc.body.off, tc.readAt)
			}
		})
	}
}

func TestDecodeJSONBoundsAndShapes(t *testing.T) {
	dataURI := "data:image/png;base64," + strings.Repeat("A", 1000)
	for _, tc := range []struct {
		name, body string
		kind       providers.Kind // "" for success
		msg        string
	}{
		{"ok", `{"model":"m","prompt":"p","n":2,"image":["` + dataURI + `","` + dataURI + `"]}`, "", ""},
		{"trailing data", `{"model":"m"} {}`, providers.KindInvalidRequest, "unexpected data"},
		{"not an object", `[1]`, providers.KindInvalidRequest, "must be a JSON object"},
		{"empty", ``, providers.KindInvalidRequest, "empty"},
		{"truncated", `{"model":"m","prompt":"p`, providers.KindInvalidRequest, "line 1"},
		{"too many images", `{"model":"m","image":[` + strings.Repeat(`"https://x/y",`, maxImageRefs) + `"https://x/z"]}`,
			providers.KindInvalidRequest, "At most 16"},
		{"a long but legal prompt", `{"model":"m","prompt":"` + strings.Repeat("é", 32000) + `"}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ar, err := decodeBody(t, strings.NewReader(tc.body))
			if tc.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				if ar.Model != "m" {
					t.Errorf("model %q", ar.Model)
				}
				return
			}
			pe, ok := err.(*providers.Error)
			if !ok || pe.Kind != tc.kind || !strings.Contains(pe.Message, tc.msg) {
				t.Errorf("error %v, want %s containing %q", err, tc.kind, tc.msg)
			}
		})
	}
}
