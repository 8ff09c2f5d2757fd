// Package jsonscan walks JSON text without decoding it: where a string or value ends, and the
// members of an object or the elements of an array of a document json.Valid accepts. The fast
// decoders of the hot path (frontdoor's small request bodies, openai's answers, b64json's split
// of large image strings) read through it, in loops: encoding/json's decoder recurses, with
// frames of up to 0.9 KB per level, deep in a request's stack.
package jsonscan

import (
	"bytes"
	"strings"
)

// SkipSpace returns the index of the first byte at or after i that is not JSON white space.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// StringEnd returns the index of the quote that ends the JSON string starting at b[start], or
// -1 when it does not end. The text need not be valid otherwise.
func StringEnd(b []byte, start int) int {
	k := start + 1
	for {
		q := bytes.IndexByte(b[k:], '"')
		if q < 0 {
			return -1
		}
		e := k + q
		bs := 0
		for p := e - 1; p > start && b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			return e
		}
		k = e + 1
	}
}

// ValueEnd returns the index just past the JSON value that starts at b[i], in a document that
// json.Valid accepts. It loops rather than recursing, however deep the value.
func ValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return StringEnd(b, i) + 1
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch b[j] {
			case '"':
				j = StringEnd(b, j)
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
	}
	j := i // a number, true, false or null
	for j < len(b) && strings.IndexByte(",}] \t\n\r", b[j]) < 0 {
		j++
	}
	return j
}

// Members calls fn with the name (the text between its quotes, escapes as written) and the
// value of each member of the object that starts at b[i], in a document json.Valid accepts,
// until fn returns false. It reports whether it read every member.
func Members(b []byte, i int, fn func(name, value []byte) bool) bool {
	for i = SkipSpace(b, i+1); b[i] != '}'; {
		end := ValueEnd(b, i) // the name: a string, the document being valid
		name := b[i+1 : end-1]
		i = SkipSpace(b, SkipSpace(b, end)+1) // past the colon
		end = ValueEnd(b, i)
		if !fn(name, b[i:end]) {
			return false
		}
		if i = SkipSpace(b, end); b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
	return true
}

// Elements calls fn with each element of the array that starts at b[i], in a document json.Valid
// accepts, until fn returns false. It reports whether it read every element.
func Elements(b []byte, i int, fn func(value []byte) bool) bool {
	for i = SkipSpace(b, i+1); b[i] != ']'; {
		end := ValueEnd(b, i)
		if !fn(b[i:end]) {
			return false
		}
		if i = SkipSpace(b, end); b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
	return true
}
