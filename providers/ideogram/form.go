package ideogram

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"
)

// form is a multipart/form-data body in the making: text fields and files in order. Encoding it
// does not copy file bytes: the body reads them from the request's own slices.
type form struct {
	parts []formPart
}

type formPart struct {
	name        string
	value       string // text fields
	filename    string // files
	contentType string // files
	data        []byte // files
	file        bool
}

func (f *form) field(name, value string) {
	f.parts = append(f.parts, formPart{name: name, value: value})
}

func (f *form) fileField(name, filename, contentType string, data []byte) {
	f.parts = append(f.parts, formPart{name: name, filename: filename, contentType: contentType, data: data, file: true})
}

// get returns the first text value of name.
func (f *form) get(name string) (string, bool) {
	for _, p := range f.parts {
		if p.name == name && !p.file {
			return p.value, true
		}
	}
	return "", false
}

var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "")

// encode returns the body, its length and its Content-Type. An empty boundary picks a random one.
func (f *form) encode(boundary string) (io.Reader, int64, string) {
	if boundary == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		boundary = "imagegw" + hex.EncodeToString(b[:])
	}
	var readers []io.Reader
	var n int64
	var head bytes.Buffer
	flush := func() {
		if head.Len() > 0 {
			b := bytes.Clone(head.Bytes())
			readers = append(readers, bytes.NewReader(b))
			n += int64(len(b))
			head.Reset()
		}
	}
	for i, p := range f.parts {
		if i > 0 {
			head.WriteString("\r\n")
		}
		head.WriteString("--" + boundary + "\r\n")
		if p.file {
			head.WriteString(`Content-Disposition: form-data; name="` + quoteEscaper.Replace(p.name) +
				`"; filename="` + quoteEscaper.Replace(p.filename) + "\"\r\n")
			head.WriteString("Content-Type: " + p.contentType + "\r\n\r\n")
			flush()
			readers = append(readers, bytes.NewReader(p.data))
			n += int64(len(p.data))
			continue
		}
		head.WriteString(`Content-Disposition: form-data; name="` + quoteEscaper.Replace(p.name) + "\"\r\n\r\n")
		head.WriteString(p.value)
	}
	if len(f.parts) > 0 {
		head.WriteString("\r\n")
	}
	head.WriteString("--" + boundary + "--\r\n")
	flush()
	return io.MultiReader(readers...), n, "multipart/form-data; boundary=" + boundary
}
