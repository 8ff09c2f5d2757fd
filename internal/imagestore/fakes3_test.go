package imagestore

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeS3 is a small S3 server for unit tests: path-style requests on buckets of objects in
// memory, the calls the S3 backend makes (HEAD/PUT bucket, PUT/GET/HEAD/DELETE object,
// ListObjectsV2 with paging, multi-object delete) and S3's XML errors. With a key set it
// refuses requests not signed with it (it checks the credential named, not the signature).
type fakeS3 struct {
	t   *testing.T
	srv *httptest.Server
	// key, when set, is the access key ID every request must be signed with.
	key string
	// pageSize is ListObjectsV2's page size (small, to exercise paging).
	pageSize int

	mu      sync.Mutex
	buckets map[string]map[string]*fakeObject
	now     func() time.Time
	calls   map[string]int // "GET object", "PUT object", "LIST", … → count
	// fault, when set, may answer a request itself (return true).
	fault func(w http.ResponseWriter, r *http.Request) bool
}

type fakeObject struct {
	data     []byte
	header   http.Header // Content-Type, Cache-Control, X-Amz-Meta-*
	modified time.Time
}

func newFakeS3(t *testing.T) *fakeS3 {
	f := &fakeS3{t: t, pageSize: 2, buckets: map[string]map[string]*fakeObject{}, now: time.Now, calls: map[string]int{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// url is the s3 images URL of bucket/prefix on the fake.
func (f *fakeS3) url(bucketAndPrefix string, params ...string) string {
	return "s3://" + bucketAndPrefix + "?" + strings.Join(append([]string{"endpoint=" + f.srv.URL}, params...), "&")
}

func (f *fakeS3) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[call]
}

// keys returns the keys of bucket, sorted.
func (f *fakeS3) keys(bucket string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.buckets[bucket] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// age makes every object of bucket d older.
func (f *fakeS3) age(bucket string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.buckets[bucket] {
		o.modified = o.modified.Add(-d)
	}
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.fault != nil && f.fault(w, r) {
		return
	}
	auth := r.Header.Get("Authorization")
	if c := r.URL.Query().Get("X-Amz-Credential"); c != "" {
		auth = "presigned Credential=" + c // a presigned URL carries it in the query
	}
	switch {
	case f.key != "" && !strings.Contains(auth, "Credential="+f.key+"/"):
		s3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied.")
		return
	case f.key == "" && auth != "":
		f.t.Errorf("fake S3: a signed request to a server without authentication: %s %s", r.Method, r.URL)
	}
	if strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		s3Error(w, http.StatusNotImplemented, "NotImplemented", "the fake takes plain bodies")
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, exists := f.buckets[bucket]
	if key == "" {
		switch {
		case r.Method == http.MethodHead:
			f.calls["HEAD bucket"]++
			if !exists {
				w.WriteHeader(http.StatusNotFound)
			}
		case r.Method == http.MethodPut:
			f.calls["PUT bucket"]++
			if exists {
				s3Error(w, http.StatusConflict, "BucketAlreadyOwnedByYou", "yours")
				return
			}
			f.buckets[bucket] = map[string]*fakeObject{}
		case !exists:
			s3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		case r.Method == http.MethodGet && q.Get("list-type") == "2":
			f.calls["LIST"]++
			f.list(w, bucket, objs, q)
		case r.Method == http.MethodPost && q.Has("delete"):
			f.calls["DELETE objects"]++
			f.deleteObjects(w, r, objs)
		default:
			s3Error(w, http.StatusNotImplemented, "NotImplemented", r.Method+" "+r.URL.RawQuery)
		}
		return
	}
	if !exists {
		s3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		return
	}
	switch r.Method {
	case http.MethodPut:
		f.calls["PUT object"]++
		data, err := io.ReadAll(r.Body)
		if err != nil {
			s3Error(w, http.StatusBadRequest, "IncompleteBody", err.Error())
			return
		}
		if cl := r.Header.Get("Content-Length"); cl != strconv.Itoa(len(data)) {
			s3Error(w, http.StatusBadRequest, "IncompleteBody", "length "+cl)
			return
		}
		h := http.Header{}
		for k, v := range r.Header {
			if k == "Content-Type" || k == "Cache-Control" || strings.HasPrefix(k, "X-Amz-Meta-") {
				h[k] = v
			}
		}
		objs[key] = &fakeObject{data: data, header: h, modified: f.now().Truncate(time.Second)}
		w.Header().Set("ETag", `"`+strconv.Itoa(len(data))+`"`)
	case http.MethodGet, http.MethodHead:
		f.calls[r.Method+" object"]++
		o, ok := objs[key]
		if !ok {
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			s3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return
		}
		for k, v := range o.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(o.data)))
		w.Header().Set("Last-Modified", o.modified.UTC().Format(http.TimeFormat))
		w.Header().Set("ETag", `"`+strconv.Itoa(len(o.data))+`"`)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(o.data)
		}
	case http.MethodDelete:
		f.calls["DELETE object"]++
		delete(objs, key)
		w.WriteHeader(http.StatusNoContent)
	default:
		s3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method)
	}
}

func (f *fakeS3) list(w http.ResponseWriter, bucket string, objs map[string]*fakeObject, q map[string][]string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	prefix, after := get("prefix"), get("continuation-token")
	var keys []string
	for k := range objs {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	type content struct {
		Key          string
		LastModified string
		ETag         string
		Size         int
		StorageClass string
	}
	res := struct {
		XMLName               xml.Name `xml:"ListBucketResult"`
		Name                  string
		Prefix                string
		KeyCount              int
		MaxKeys               int
		IsTruncated           bool
		NextContinuationToken string `xml:",omitempty"`
		Contents              []content
	}{Name: bucket, Prefix: prefix, MaxKeys: f.pageSize}
	if len(keys) > f.pageSize {
		keys, res.IsTruncated, res.NextContinuationToken = keys[:f.pageSize], true, keys[f.pageSize-1]
	}
	for _, k := range keys {
		o := objs[k]
		res.Contents = append(res.Contents, content{Key: k, LastModified: o.modified.UTC().Format("2006-01-02T15:04:05.000Z"),
			ETag: `"x"`, Size: len(o.data), StorageClass: "STANDARD"})
	}
	res.KeyCount = len(res.Contents)
	w.Header().Set("Content-Type", "application/xml")
	_ = xml.NewEncoder(w).Encode(res)
}

func (f *fakeS3) deleteObjects(w http.ResponseWriter, r *http.Request, objs map[string]*fakeObject) {
	var req struct {
		Quiet  bool
		Object []struct{ Key string }
	}
	if err := xml.NewDecoder(r.Body).Decode(&req); err != nil {
		s3Error(w, http.StatusBadRequest, "MalformedXML", err.Error())
		return
	}
	type deleted struct{ Key string }
	res := struct {
		XMLName xml.Name  `xml:"DeleteResult"`
		Deleted []deleted `xml:"Deleted"`
	}{}
	for _, o := range req.Object {
		delete(objs, o.Key)
		if !req.Quiet {
			res.Deleted = append(res.Deleted, deleted{o.Key})
		}
	}
	w.Header().Set("Content-Type", "application/xml")
	_ = xml.NewEncoder(w).Encode(res)
}
