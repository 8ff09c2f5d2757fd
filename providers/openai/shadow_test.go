package openai

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/imagegw/imagegw/providers/internal/b64json"
)

// shadowCases are answers decodeShadow must read (fast: true) or leave to encoding/json.
var shadowCases = []struct {
	body string
	fast bool
}{
	{`{"created":1700000000,"data":[{"b64_json":0}]}`, true},
	{` { "created" : 1700000000 , "data" : [ { "b64_json" : 0 , "revised_prompt" : "a cat" } , null , {"url":"https://h/p.png","seed":"42"} ] } `, true},
	{`{"created":"2024-01-02T03:04:05Z","data":[],"size":"1024x1024","quality":null,"background":7,"output_format":"png","seed":12,"error":null,"usage":{"input_tokens":3,"output_tokens":9}}`, true},
	{`{"data":null,"usage":null,"error":{"message":"x"},"extra":{"deep":[[[{"a":"}"}]]]},"more":[1,2,"]"]}`, true},
	{`{"data":[{"b64_json":null,"url":null,"extra":true,"revised_prompt":"é ok"}]}`, true},
	{`{}`, true},
	{`{"data":[{"b64_json":0}],"usage":{"input_tokens":50,"input_tokens_details":{"image_tokens":40,"text_tokens":10},"output_tokens":4160,"total_tokens":4210,"output_tokens_details":{"x":1}}}`, true},
	{`{"usage":{"input_tokens":null,"input_tokens_details":null,"total_tokens":-3}}`, true},
	{`{"usage":{"input_tokens":1.0}}`, true},                   // usage is marked bad, as its UnmarshalJSON does
	{`{"usage":{"input_tokens":"7","Output_tokens":2}}`, true}, // the same
	{`{"usage":[1]}`, true},
	{`{"usage":{"input_tokens":1,"input_tokens":2}}`, true},
	{`{"data":[{"url":"https:\/\/h\/p.png?a=1\u0026b=2","revised_prompt":"\"q\" \\ \b\f\n\r\t \u00e9\u4e2d"}]}`, true},
	{`{"size":"1024\u00781024","background":"\u0000"}`, true},
	// Left to encoding/json: surrogates, case folding, duplicates, wrong types, not an object.
	{`{"data":[{"url":"\ud800"}]}`, false},
	{`{"Data":[{"b64_json":0}]}`, false},
	{`{"data":[{"URL":"x"}]}`, false},
	{`{"d\u0061ta":[]}`, false},
	{`{"data":[],"data":[{"b64_json":0}]}`, false},
	{`{"data":[{"url":"a","url":"b"}]}`, false},
	{`{"data":{"b64_json":0}}`, false},
	{`{"data":["x"]}`, false},
	{`{"data":[{"url":5}]}`, false},
	{`{"data":[{"revised_prompt":"\ud83d\ude00"}]}`, false},
	{"{\"data\":[{\"revised_prompt\":\"bad \xff utf-8\"}]}", false},
	{`null`, false},
	{`[]`, false},
	{`{"data":[}`, false},
	{``, false},
}

// TestDecodeShadowIsEncodingJSON: what decodeShadow reads is exactly what json.Unmarshal reads
// into an imagesResponse, and what it leaves alone is what it says it leaves.
func TestDecodeShadowIsEncodingJSON(t *testing.T) {
	for _, c := range shadowCases {
		var fast imagesResponse
		ok := decodeShadow([]byte(c.body), &fast)
		if ok != c.fast {
			t.Errorf("%s: decodeShadow = %v, want %v", c.body, ok, c.fast)
		}
		if ok {
			checkShadow(t, []byte(c.body), &fast)
		}
	}
}

func checkShadow(t *testing.T, body []byte, fast *imagesResponse) {
	t.Helper()
	var want imagesResponse
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatalf("%s: decodeShadow read what encoding/json refuses: %v", body, err)
	}
	if !reflect.DeepEqual(*fast, want) {
		t.Fatalf("%s:\ndecodeShadow %+v\nencoding/json %+v", body, *fast, want)
	}
}

func FuzzDecodeShadow(f *testing.F) {
	for _, c := range shadowCases {
		f.Add([]byte(c.body))
	}
	if names, _ := filepath.Glob(filepath.Join("testdata", "upstream", "*.json")); len(names) > 0 {
		for _, name := range names {
			if b, err := os.ReadFile(name); err == nil {
				if shadow, _, ok := b64json.Split(b, "b64_json"); ok {
					f.Add(shadow)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast imagesResponse
		if decodeShadow(body, &fast) {
			checkShadow(t, body, &fast)
		}
	})
}

// BenchmarkDecodeShadow: the usual answer's shadow (its b64_json set aside) read by
// decodeShadow and by encoding/json.
func BenchmarkDecodeShadow(b *testing.B) {
	body := []byte(`{"created":1764806400,"data":[{"b64_json":0,"revised_prompt":"a lighthouse at dusk"}],"size":"1024x1024","quality":"high","output_format":"png"}`)
	b.Run("decodeShadow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r imagesResponse
			if !decodeShadow(body, &r) {
				b.Fatal("not read")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r imagesResponse
			if err := json.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
