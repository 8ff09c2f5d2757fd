// Package api_test checks that the running gateway answers as api/openapi.yaml says.
package api_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// specRouter loads openapi.yaml and returns its routes on the gateway at server.
func specRouter(t *testing.T, server string) routers.Router {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: server}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return router
}

func tinyPNG(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 64, 64))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestResponsesMatchTheSpec sends real requests to a running gateway and validates each request
// and response (status, headers, body schema) against the spec.
func TestResponsesMatchTheSpec(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	router := specRouter(t, g.URL)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("model", "sandbox-image")
	mw.WriteField("n", "2")
	fw, _ := mw.CreateFormFile("image", "in.png")
	fw.Write(tinyPNG(t))
	mw.Close()

	type call struct {
		name, method, path, ctype, auth string
		body                            []byte
		status                          int
	}
	user, admin := "Bearer "+g.Key, "Bearer "+gatewaytest.AdminToken
	calls := []call{
		{"generate url", "POST", "/v1/images/generations", "application/json", user, []byte(`{"model":"sandbox-image","prompt":"a red fox","size":"256x256"}`), 200},
		{"generate b64", "POST", "/v1/images/generations", "application/json", user, []byte(`{"model":"sandbox-steps","prompt":"a red fox","size":"256x256","steps":8,"seed":42,"response_format":"b64_json"}`), 200},
		{"generate bad n", "POST", "/v1/images/generations", "application/json", user, []byte(`{"model":"sandbox-image","prompt":"x","n":50}`), 400},
		{"generate no key", "POST", "/v1/images/generations", "application/json", "", []byte(`{"model":"sandbox-image","prompt":"x"}`), 401},
		{"generate unknown model", "POST", "/v1/images/generations", "application/json", user, []byte(`{"model":"nope","prompt":"x"}`), 404},
		{"variation", "POST", "/v1/images/variations", mw.FormDataContentType(), user, mp.Bytes(), 200},
		{"models", "GET", "/v1/models", "", user, nil, 200},
		{"model", "GET", "/v1/models/sandbox-fixed", "", user, nil, 200},
		{"model missing", "GET", "/v1/models/none", "", user, nil, 404},
		{"healthz", "GET", "/healthz", "", "", nil, 200},
		{"readyz", "GET", "/readyz", "", "", nil, 200},
		{"admin create", "POST", "/admin/v1/keys", "application/json", admin, []byte(`{"name":"ci","models":["sandbox-image"],"expires_in":"720h","budget":"25.00","budget_period":"monthly","rpm":60}`), 201},
		{"admin list", "GET", "/admin/v1/keys", "", admin, nil, 200},
		{"admin bad token", "GET", "/admin/v1/keys", "", "Bearer wrong", nil, 401},
		{"quote", "POST", "/v1/images/quote", "application/json", user, []byte(`{"model":"sandbox-fixed","prompt":"x","width":1024,"height":512,"n":2}`), 200},
		{"quote bad size", "POST", "/v1/images/quote", "application/json", user, []byte(`{"model":"sandbox-fixed","prompt":"x","size":"7x7"}`), 400},
		{"admin usage", "GET", "/admin/v1/usage?by=model&since=24h", "", admin, nil, 200},
		{"admin usage events", "GET", "/admin/v1/usage?limit=5", "", admin, nil, 200},
		{"admin usage bad by", "GET", "/admin/v1/usage?by=week", "", admin, nil, 400},
		{"admin channels", "GET", "/admin/v1/channels", "", admin, nil, 200},
		{"admin disable channel", "PATCH", "/admin/v1/channels/sandbox", "application/json", admin, []byte(`{"enabled":false}`), 200},
		{"admin channel disabled", "POST", "/v1/images/generations", "application/json", user, []byte(`{"model":"sandbox-image","prompt":"x"}`), 503},
		{"admin enable channel", "PATCH", "/admin/v1/channels/sandbox", "application/json", admin, []byte(`{"enabled":true}`), 200},
		{"admin channel bad field", "PATCH", "/admin/v1/channels/sandbox", "application/json", admin, []byte(`{"enabled":"no"}`), 400},
		{"admin channel unknown", "PATCH", "/admin/v1/channels/nope", "application/json", admin, []byte(`{"enabled":false}`), 404},
		{"admin reload", "POST", "/admin/v1/reload", "", admin, nil, 200},
		{"admin reload bad token", "POST", "/admin/v1/reload", "", "Bearer wrong", nil, 401},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.ctype != "" {
				h.Set("Content-Type", c.ctype)
			}
			if c.auth != "" {
				h.Set("Authorization", c.auth)
			}
			// A call the gateway refuses may break the spec on purpose (n: 50, no key).
			exchange(t, router, c.method, g.URL+c.path, h, c.body, c.status < 300, c.status)
		})
	}
}

// exchange sends a request to the gateway and checks the exchange against the spec: the request
// (when checkRequest), the status (want), and the response's headers and body.
func exchange(t *testing.T, router routers.Router, method, url string, h http.Header, body []byte, checkRequest bool, want int) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header = h
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("the spec has no route for %s %s: %v", method, req.URL.RequestURI(), err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if checkRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Fatalf("request does not match the spec: %v", err)
		}
	}
	// Validating the request read its body: send a fresh one.
	send, _ := http.NewRequest(method, url, bytes.NewReader(body))
	send.Header = h.Clone()
	resp, err := http.DefaultClient.Do(send)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, got)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(got)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Fatalf("response does not match the spec: %v\n%s", err, got)
	}
}
