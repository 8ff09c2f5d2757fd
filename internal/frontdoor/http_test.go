package frontdoor_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/internal/gatewaytest"
)

type errBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

type rawReq struct {
	method, path, ctype string
	body                []byte
	key                 string
	header              map[string]string
}

func do(t *testing.T, g *gatewaytest.Gateway, r rawReq) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(r.method, g.URL+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	if r.key != "-" {
		k := r.key
		if k == "" {
			k = g.Key
		}
		req.Header.Set("Authorization", "Bearer "+k)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func jsonReq(body string) rawReq {
	return rawReq{method: "POST", path: "/v1/images/generations", ctype: "application/json", body: []byte(body)}
}

type part struct {
	name, filename string
	data           []byte
}

func multipartReq(path string, parts ...part) rawReq {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		if p.filename != "" {
			w, _ := mw.CreateFormFile(p.name, p.filename)
			w.Write(p.data)
		} else {
			mw.WriteField(p.name, string(p.data))
		}
	}
	mw.Close()
	return rawReq{method: "POST", path: path, ctype: mw.FormDataContentType(), body: buf.Bytes()}
}

func text(name, v string) part { return part{name: name, data: []byte(v)} }

// bombPNG is a valid PNG header declaring a huge image, followed by no pixel data.
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestErrorsInTheOpenAIEnvelope(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: nil})
	img := pngOf(t, 64, 64, false)
	cases := []struct {
		name   string
		req    rawReq
		status int
		code   string
		param  string
		msg    string
	}{
		{"missing key", rawReq{method: "POST", path: "/v1/images/generations", ctype: "application/json", body: []byte(`{}`), key: "-"}, 401, "invalid_api_key", "", "didn't provide an API key"},
		{"missing prompt", jsonReq(`{"model":"sandbox-image"}`), 400, "invalid_value", "prompt", "Missing required parameter: 'prompt'"},
		{"empty prompt", jsonReq(`{"model":"sandbox-image","prompt":"  "}`), 400, "invalid_value", "prompt", "must not be empty"},
		{"missing model", jsonReq(`{"prompt":"x"}`), 400, "invalid_value", "model", "'model'"},
		{"n zero", jsonReq(`{"model":"sandbox-image","prompt":"x","n":0}`), 400, "invalid_value", "n", "between 1 and 10"},
		{"n wrong type", jsonReq(`{"model":"sandbox-image","prompt":"x","n":"two"}`), 400, "invalid_value", "n", "Invalid type for 'n'"},
		{"malformed size", jsonReq(`{"model":"sandbox-image","prompt":"x","size":"big"}`), 400, "invalid_value", "size", "WIDTHxHEIGHT"},
		{"size not a multiple of 8", jsonReq(`{"model":"sandbox-image","prompt":"x","size":"1001x1000"}`), 400, "unsupported_parameter", "size", "multiples of 8"},
		{"width over max", jsonReq(`{"model":"sandbox-image","prompt":"x","width":4096,"height":512}`), 400, "unsupported_parameter", "width", "at most 2048"},
		{"width without height", jsonReq(`{"model":"sandbox-image","prompt":"x","width":512}`), 400, "invalid_value", "height", "go together"},
		{"unknown field", jsonReq(`{"model":"sandbox-image","prompt":"x","colour":"red"}`), 400, "unknown_parameter", "colour", "Unknown parameter: 'colour'"},
		{"malformed json", jsonReq("{\"model\":\"sandbox-image\",\n \"prompt\": \"x\",,}"), 400, "invalid_value", "", "line 2, column 16"},
		{"truncated json", jsonReq(`{"model":"sandbox-image","prompt":"x"`), 400, "invalid_value", "", "malformed JSON"},
		{"steps on a fixed-step model", jsonReq(`{"model":"sandbox-fixed","prompt":"x","steps":20}`), 400, "unsupported_parameter", "steps", "always runs 4 steps"},
		{"param the model does not take", jsonReq(`{"model":"sandbox-fixed","prompt":"x","guidance_scale":3}`), 400, "unsupported_parameter", "guidance_scale", "does not take 'guidance_scale'"},
		{"extension the model does not take", jsonReq(`{"model":"sandbox-image","prompt":"x","rendering_speed":"TURBO"}`), 400, "unsupported_parameter", "rendering_speed", "extension field"},
		{"bad response_format", jsonReq(`{"model":"sandbox-image","prompt":"x","response_format":"png"}`), 400, "invalid_value", "response_format", "'url' and 'b64_json'"},
		{"streaming urls", jsonReq(`{"model":"sandbox-image","prompt":"x","stream":true,"response_format":"url"}`), 400, "unsupported_parameter", "response_format", "b64_json"},
		{"unknown model", jsonReq(`{"model":"dall-e-9","prompt":"x"}`), 404, "model_not_found", "model", "does not exist"},
		{"wrong content type", rawReq{method: "POST", path: "/v1/images/generations", ctype: "text/plain", body: []byte("hi")}, 415, "unsupported_media_type", "", "application/json"},
		{"json to edits", rawReq{method: "POST", path: "/v1/images/edits", ctype: "application/json", body: []byte(`{}`)}, 415, "unsupported_media_type", "", "multipart/form-data"},
		{"edit without image", multipartReq("/v1/images/edits", text("model", "sandbox-image"), text("prompt", "x")), 400, "invalid_value", "image", "'image'"},
		{"edit with a non-image", multipartReq("/v1/images/edits", text("model", "sandbox-image"), text("prompt", "x"), part{"image", "a.png", []byte("not an image at all")}), 400, "invalid_value", "image", "not a PNG"},
		{"mask of another size", multipartReq("/v1/images/edits", text("model", "sandbox-image"), text("prompt", "x"), part{"image", "a.png", img}, part{"mask", "m.png", pngOf(t, 32, 32, true)}), 400, "invalid_value", "mask", "same size"},
		{"pixel bomb rejected before decoding", multipartReq("/v1/images/edits", text("model", "sandbox-image"), text("prompt", "x"), part{"image", "bomb.png", bombPNG(100000, 100000)}), 400, "invalid_value", "image", "too large"},
		{"unknown multipart field", multipartReq("/v1/images/variations", text("model", "sandbox-image"), text("colour", "red"), part{"image", "a.png", img}), 400, "unknown_parameter", "colour", "Unknown parameter"},
		{"operation the model lacks", multipartReq("/v1/images/upscale", text("model", "sandbox-image"), part{"image", "a.png", img}), 400, "unsupported_parameter", "model", "does not support the upscale"},
		{"unknown route", rawReq{method: "GET", path: "/v1/nothing-here"}, 404, "not_found", "", "Invalid URL"},
		{"image URL to a private address", jsonReq(`{"model":"sandbox-image","prompt":"x","image":"http://169.254.169.254/latest/meta-data"}`), 400, "invalid_value", "image", "could not be fetched"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, g, tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
			var eb errBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("not an error envelope: %s", body)
			}
			e := eb.Error
			if e.Code == nil || *e.Code != tc.code {
				t.Fatalf("code %v, want %q: %s", e.Code, tc.code, body)
			}
			gotParam := ""
			if e.Param != nil {
				gotParam = *e.Param
			}
			if gotParam != tc.param {
				t.Fatalf("param %q, want %q: %s", gotParam, tc.param, body)
			}
			if e.Type == "" || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("message %q does not contain %q", e.Message, tc.msg)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{}})
	big := bytes.Repeat([]byte("a"), 65<<20)
	resp, body := do(t, g, rawReq{method: "POST", path: "/v1/images/generations", ctype: "application/json", body: big})
	if resp.StatusCode != 413 || !strings.Contains(string(body), "request_too_large") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

func TestNearestMappingIsOptInAndReported(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	resp, body := do(t, g, jsonReq(`{"model":"sandbox-image","prompt":"x","size":"1001x999","map_nearest":true,"response_format":"b64_json"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Imagegw-Adjusted"); got != "size=1001x999->1000x992" {
		t.Fatalf("X-Imagegw-Adjusted = %q", got)
	}
	var out struct {
		Data []struct {
			Size string `json:"size"`
		} `json:"data"`
	}
	json.Unmarshal(body, &out)
	if len(out.Data) != 1 || out.Data[0].Size != "1000x992" {
		t.Fatalf("data = %s", body)
	}
	// The header opts in too; steps on a fixed-step model map to its fixed count.
	r2 := jsonReq(`{"model":"sandbox-fixed","prompt":"x","steps":30}`)
	r2.header = map[string]string{"X-Imagegw-Map-Nearest": "true"}
	resp, body = do(t, g, r2)
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Adjusted") != "steps=30->4" {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Adjusted"), body)
	}
}

func TestPartialDeliveryAndWithheldImages(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	resp, body := do(t, g, jsonReq(`{"model":"sandbox-image","prompt":"x [sandbox:withhold=1]","n":3,"size":"64x64"}`))
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Partial") != "requested=3; delivered=2" {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Partial"), body)
	}
	resp, body = do(t, g, jsonReq(`{"model":"sandbox-image","prompt":"x [sandbox:withhold=2]","n":2,"size":"64x64"}`))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "content_policy_violation") {
		t.Fatalf("all withheld: %d %s", resp.StatusCode, body)
	}
}

func TestURLsKeepALiteralAmpersand(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	frontdoor.WriteStringForTest(bw, "https://x/y.png?a=1&b=<2>")
	bw.Flush()
	if got := buf.String(); got != `"https://x/y.png?a=1&b=<2>"` {
		t.Fatalf("got %s", got)
	}
}
