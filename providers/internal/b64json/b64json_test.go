package b64json

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	cases := []struct {
		body, shadow string
		strs         []string
		ok           bool
	}{
		{`{"data":[{"b64_json":"aGk="}]}`, `{"data":[{"b64_json":0}]}`, []string{`"aGk="`}, true},
		{`{"data":[{"b64_json" : "aGk=","x":"b64_json"},{"B64_JSON":"YQ=="}]}`, `{"data":[{"b64_json" : 0,"x":"b64_json"},{"B64_JSON":1}]}`, []string{`"aGk="`, `"YQ=="`}, true},
		{`{"data":[{"url":"https://x/\"b64_json\":\"y\""}]}`, `{"data":[{"url":"https://x/\"b64_json\":\"y\""}]}`, nil, true},
		{`{"data":[{"b64_json":null}]}`, `{"data":[{"b64_json":null}]}`, nil, true},
		{`{"data":[{"b64_json":"a\\\"b"}]}`, `{"data":[{"b64_json":0}]}`, []string{`"a\\\"b"`}, true},
		{`{"data":[{"b64_json":5}]}`, "", nil, false},
		{`{"data":[{"b64_json":{"x":1}}]}`, "", nil, false},
		{`{"data":[{"b64\u005fjson":"aGk="}]}`, "", nil, false},
		{`{"data":[{"b64_jſon":7}]}`, "", nil, false}, // encoding/json folds ſ to s
		{`{"data":[{"b64_json":"aGk=`, "", nil, false},
	}
	for _, tc := range cases {
		shadow, strs, ok := Split([]byte(tc.body), "b64_json")
		if ok != tc.ok {
			t.Errorf("%s: ok %v", tc.body, ok)
			continue
		}
		if !ok {
			continue
		}
		var got []string
		for _, s := range strs {
			got = append(got, string(s))
		}
		if string(shadow) != tc.shadow || strings.Join(got, "|") != strings.Join(tc.strs, "|") {
			t.Errorf("%s:\n shadow %s\n strs %q", tc.body, shadow, got)
		}
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		value, text, ct string
		unpadded, bad   bool
	}{
		{value: `"aGk="`, text: "aGk="},
		{value: `"aGk"`, bad: true},
		{value: `"aGk"`, unpadded: true, text: "aGk="},
		{value: `"a"`, unpadded: true, bad: true},
		{value: `"data:IMAGE/PNG;base64,aGk="`, text: "aGk=", ct: "image/png"},
		{value: `"data:image\/png;base64,aG\/k"`, text: "aG/k", ct: "image/png"},
		{value: `"aG\nk="`, text: "aGk="},
		{value: `"aG k="`, bad: true},
		{value: `"aGk-"`, bad: true},
		{value: `"aG=="`, text: "aG=="},
		{value: `"a==="`, bad: true},
		{value: `null`},
		{value: `""`},
		{value: `"data:image/png,aGk="`, bad: true},
		{value: `5`, bad: true},
	}
	for _, tc := range cases {
		im, err := Parse([]byte(tc.value), Options{Unpadded: tc.unpadded})
		if (err != nil) != tc.bad || string(im.Text) != tc.text || im.ContentType != tc.ct {
			t.Errorf("%s: text %q type %q err %v", tc.value, im.Text, im.ContentType, err)
		}
	}
}

// TestParseKeepsTheText checks that a plain value is not copied: the text is the body's.
func TestParseKeepsTheText(t *testing.T) {
	v := []byte(`"` + strings.Repeat("QUJD", 1000) + `"`)
	im, err := Parse(v, Options{})
	if err != nil || &im.Text[0] != &v[1] {
		t.Fatalf("the text was copied (or %v)", err)
	}
}

// FuzzSplit checks that Split changes nothing encoding/json sees but the strings it sets aside:
// the shadow is valid exactly when the body is (or a string set aside is not a valid JSON
// string: Parse refuses it), and the body decodes to what the shadow decodes to with the
// strings put back.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		`{"created":1,"data":[{"b64_json":"aGk=","revised_prompt":"x"}],"usage":{"b64_json":"x"}}`,
		`{"data":[{"B64_json":"aGk=","b64_json":"YQ=="}]}`,
		`{"data":[{"url":"http://x","b64_json":null}]}`,
		`["b64_json",{"b64_json":"\"\\"}]`,
		`{"b64_json":"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		shadow, strs, ok := Split(body, "b64_json")
		if !ok {
			return
		}
		badStr := false // a string set aside is checked by Parse, not by encoding/json
		for _, s := range strs {
			badStr = badStr || !json.Valid(s)
		}
		if json.Valid(shadow) != json.Valid(body) && !(badStr && json.Valid(shadow)) {
			t.Fatalf("valid: body %v, shadow %v\nbody   %s\nshadow %s", json.Valid(body), json.Valid(shadow), body, shadow)
		}
		if !json.Valid(body) {
			return
		}
		var a, b any
		if json.Unmarshal(body, &a) != nil {
			return // valid, but not for Go (a number out of range)
		}
		if err := json.Unmarshal(shadow, &b); err != nil {
			t.Fatalf("the shadow does not decode: %v", err)
		}
		restore(t, &b, strs)
		aj, _ := json.Marshal(a)
		bj, _ := json.Marshal(b)
		if !bytes.Equal(aj, bj) {
			t.Fatalf("body %s\nshadow restored %s", aj, bj)
		}
	})
}

// restore puts the strings Split set aside back in a decoded shadow.
func restore(t *testing.T, v *any, strs [][]byte) {
	switch x := (*v).(type) {
	case map[string]any:
		for k, e := range x {
			if n, ok := e.(float64); ok && strings.EqualFold(k, "b64_json") {
				var s string
				if err := json.Unmarshal(strs[int(n)], &s); err != nil {
					t.Fatalf("set-aside string %s: %v", strs[int(n)], err)
				}
				x[k] = s
				continue
			}
			restore(t, &e, strs)
			x[k] = e
		}
	case []any:
		for i := range x {
			restore(t, &x[i], strs)
		}
	}
}

// FuzzParse checks Parse against encoding/base64: a text it keeps decodes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`"aGk="`, `"aGk"`, `"data:image/png;base64,aGk="`, `"aG\nk="`, `"a==="`} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, value []byte, unpadded bool) {
		im, err := Parse(value, Options{Unpadded: unpadded})
		if err != nil || len(im.Text) == 0 {
			return
		}
		if _, err := base64.StdEncoding.DecodeString(string(im.Text)); err != nil {
			t.Fatalf("%s kept %q, which does not decode: %v", value, im.Text, err)
		}
	})
}
