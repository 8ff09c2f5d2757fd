package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValueEnd(t *testing.T) {
	for _, c := range []struct{ doc, first string }{
		{`"a\"b\\" ,1`, `"a\"b\\"`},
		{`{"a":[1,{"b":"}]"}],"c":"\\"} x`, `{"a":[1,{"b":"}]"}],"c":"\\"}`},
		{`-12.5e3]`, `-12.5e3`},
		{`null`, `null`},
		{`[[[]]],`, `[[[]]]`},
	} {
		if got := c.doc[:ValueEnd([]byte(c.doc), 0)]; got != c.first {
			t.Errorf("ValueEnd(%s) ends after %q; want %q", c.doc, got, c.first)
		}
	}
	if StringEnd([]byte(`"never ends\"`), 0) != -1 {
		t.Error("an unterminated string has an end")
	}
}

// TestMembersAndElements: what they walk is what encoding/json reads, names as written.
func TestMembersAndElements(t *testing.T) {
	doc := []byte(` { "a" : [ 1 , "x,]" , {"n":null} ] , "b\u0063" : {"c":{}} , "d":"}" } `)
	if !json.Valid(doc) {
		t.Fatal("test document is not JSON")
	}
	var names, values []string
	ok := Members(doc, SkipSpace(doc, 0), func(name, v []byte) bool {
		names, values = append(names, string(name)), append(values, string(v))
		return true
	})
	if got := strings.Join(names, "|"); !ok || got != `a|b\u0063|d` {
		t.Fatalf("names %q (ok %v)", got, ok)
	}
	if got := strings.Join(values, "|"); got != `[ 1 , "x,]" , {"n":null} ]|{"c":{}}|"}"` {
		t.Fatalf("values %q", got)
	}
	var elems []string
	Elements([]byte(values[0]), 0, func(v []byte) bool { elems = append(elems, string(v)); return true })
	if got := strings.Join(elems, "|"); got != `1|"x,]"|{"n":null}` {
		t.Fatalf("elements %q", got)
	}
	n := 0
	if Members(doc, SkipSpace(doc, 0), func(_, _ []byte) bool { n++; return false }) || n != 1 {
		t.Fatal("Members went on after fn returned false")
	}
	if !Members([]byte(`{}`), 0, nil) || !Elements([]byte(`[ ]`), 0, nil) {
		t.Fatal("empty object or array")
	}
}
