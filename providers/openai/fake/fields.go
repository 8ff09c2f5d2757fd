package fake

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
)

// fields reads request parameters from a JSON object or from multipart text parts, with OpenAI's
// type errors. Each getter reports whether the field was present.
type fields interface {
	names() []string
	has(name string) bool
	str(name string) (string, bool, *apiError)
	integer(name string) (int64, bool, *apiError)
	number(name string) (float64, bool, *apiError)
	boolean(name string) (bool, bool, *apiError)
}

func typeError(name, want, got string) *apiError {
	return invalid(name, "invalid_type", "Invalid type for '%s': expected %s, but got %s instead.", name, want, got)
}

// jsonFields are the members of a JSON request body. A null member counts as absent.
type jsonFields map[string]json.RawMessage

func parseJSONFields(body []byte) (jsonFields, *apiError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, jsonParseError()
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, jsonParseError()
	}
	for k, v := range m {
		if string(v) == "null" {
			delete(m, k)
		}
	}
	return m, nil
}

func (j jsonFields) names() []string {
	out := make([]string, 0, len(j))
	for k := range j {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (j jsonFields) has(name string) bool { _, ok := j[name]; return ok }

// kind names a JSON value's type the way OpenAI's messages do.
func kind(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	}
	if bytes.ContainsAny(raw, ".eE") {
		return "a decimal"
	}
	return "an integer"
}

func (j jsonFields) str(name string) (string, bool, *apiError) {
	raw, ok := j[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", true, typeError(name, "a string", kind(raw))
	}
	return s, true, nil
}

func (j jsonFields) integer(name string) (int64, bool, *apiError) {
	raw, ok := j[name]
	if !ok {
		return 0, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil || raw[0] == '"' {
		return 0, true, typeError(name, "an integer", kind(raw))
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(n.String(), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			return 0, true, typeError(name, "an integer", kind(raw))
		}
		v = int64(f)
	}
	return v, true, nil
}

func (j jsonFields) number(name string) (float64, bool, *apiError) {
	raw, ok := j[name]
	if !ok {
		return 0, false, nil
	}
	var f float64
	if raw[0] == '"' || json.Unmarshal(raw, &f) != nil {
		return 0, true, typeError(name, "a number", kind(raw))
	}
	return f, true, nil
}

func (j jsonFields) boolean(name string) (bool, bool, *apiError) {
	raw, ok := j[name]
	if !ok {
		return false, false, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) != nil {
		return false, true, typeError(name, "a boolean", kind(raw))
	}
	return b, true, nil
}

// formFields are the text parts of a multipart request; every value is text, as the SDKs send
// them ("2", "true").
type formFields map[string]string

func (f formFields) names() []string {
	out := make([]string, 0, len(f))
	for k := range f {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (f formFields) has(name string) bool { _, ok := f[name]; return ok }

func (f formFields) str(name string) (string, bool, *apiError) {
	v, ok := f[name]
	return v, ok, nil
}

func (f formFields) integer(name string) (int64, bool, *apiError) {
	v, ok := f[name]
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, true, typeError(name, "an integer", "a string")
	}
	return n, true, nil
}

func (f formFields) number(name string) (float64, bool, *apiError) {
	v, ok := f[name]
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, true, typeError(name, "a number", "a string")
	}
	return n, true, nil
}

func (f formFields) boolean(name string) (bool, bool, *apiError) {
	v, ok := f[name]
	if !ok {
		return false, false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, true, typeError(name, "a boolean", "a string")
	}
	return b, true, nil
}

// intRange checks an integer against [lo, hi] with OpenAI's messages.
func intRange(name string, v, lo, hi int64) *apiError {
	switch {
	case v < lo:
		return invalid(name, "integer_below_min_value",
			"Invalid '%s': integer below minimum value. Expected a value >= %d, but got %d instead.", name, lo, v)
	case v > hi:
		return invalid(name, "integer_above_max_value",
			"Invalid '%s': integer above maximum value. Expected a value <= %d, but got %d instead.", name, hi, v)
	}
	return nil
}

// checkKnown refuses the first field not in known.
func checkKnown(fs fields, known ...string) *apiError {
	for _, n := range fs.names() {
		if !slices.Contains(known, n) {
			return unknownParam(n)
		}
	}
	return nil
}
