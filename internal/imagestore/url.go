package imagestore

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Location is a parsed images URL.
type Location struct {
	// Scheme is "file" or "s3".
	Scheme string
	// Dir is a file store's directory.
	Dir string
	// Bucket and Prefix place an S3 store's objects: key = Prefix + name. Prefix is empty or
	// ends in "/".
	Bucket, Prefix string
	// Endpoint is the S3 API's base URL ("http://127.0.0.1:8333"); empty means AWS S3.
	Endpoint string
	// Region signs requests (default us-east-1; R2 wants "auto").
	Region string
	// Presign makes hosted URLs presigned object-store URLs instead of the gateway's route.
	Presign bool
	// PathStyle forces path-style requests (http://host/bucket/key) when true and virtual-host
	// style (http://bucket.host/key) when false; nil lets the client choose (path style for
	// endpoints other than AWS's and a few clouds').
	PathStyle *bool
}

// s3Params are the query parameters an s3 URL takes.
var s3Params = []string{"endpoint", "region", "presign", "path_style"}

// ParseURL parses an images URL:
//
//	file:///var/lib/imagegw/images      an absolute directory
//	file:data/images                    a directory relative to the working directory
//	s3://bucket/prefix?endpoint=http://host:port&region=us-east-1&presign=true&path_style=true
//
// An s3 URL's parameters are all optional: endpoint (default AWS S3), region (default
// us-east-1), presign (default false: the gateway proxies), path_style (default: the client
// decides). Credentials never go in the URL (they come from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY); errors never repeat the URL.
func ParseURL(raw string) (*Location, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("imagestore: images URL: "+format, args...)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("not a URL (want file:///dir or s3://bucket/prefix?endpoint=…)")
	}
	if u.User != nil {
		return nil, bad("credentials do not go in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	switch u.Scheme {
	case "file":
		dir := u.Path
		if u.Opaque != "" {
			dir = u.Opaque
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, bad("a file URL names no host: file:///absolute/dir or file:relative/dir")
		}
		if dir == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, bad("a file URL is a directory: file:///absolute/dir or file:relative/dir")
		}
		if d, err := url.PathUnescape(dir); err == nil {
			dir = d
		}
		return &Location{Scheme: "file", Dir: dir}, nil
	case "s3":
	default:
		return nil, bad("scheme %q: want file or s3", u.Scheme)
	}
	loc := &Location{Scheme: "s3", Bucket: u.Host, Region: "us-east-1"}
	if loc.Bucket == "" {
		return nil, bad("an s3 URL names its bucket: s3://bucket/prefix")
	}
	if u.Fragment != "" {
		return nil, bad("an s3 URL has no fragment")
	}
	if p := strings.Trim(path.Clean("/"+u.Path), "/"); p != "" {
		loc.Prefix = p + "/"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad("bad query")
	}
	var errs []error
	for k, v := range q {
		if !slices.Contains(s3Params, k) {
			if lk := strings.ToLower(k); strings.Contains(lk, "key") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") || strings.Contains(lk, "password") {
				errs = append(errs, bad("credentials do not go in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"))
				continue
			}
			errs = append(errs, bad("unknown parameter %q (known: %s)", k, strings.Join(s3Params, ", ")))
			continue
		}
		if len(v) != 1 {
			errs = append(errs, bad("parameter %q given %d times", k, len(v)))
			continue
		}
		switch val := v[0]; k {
		case "endpoint":
			e, err := url.Parse(val)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || e.User != nil ||
				(e.Path != "" && e.Path != "/") || e.RawQuery != "" {
				errs = append(errs, bad("endpoint: want http://host:port or https://host (no path, no credentials)"))
				continue
			}
			loc.Endpoint = e.Scheme + "://" + e.Host
		case "region":
			if val == "" {
				errs = append(errs, bad("region is empty"))
			}
			loc.Region = val
		case "presign", "path_style":
			b, err := strconv.ParseBool(val)
			if err != nil {
				errs = append(errs, bad("%s: %q is not true or false", k, val))
				continue
			}
			if k == "presign" {
				loc.Presign = b
			} else {
				loc.PathStyle = &b
			}
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	return loc, nil
}

// String is the location without credentials (it never has any): "file:DIR" or
// "s3://bucket/prefix at ENDPOINT".
func (l *Location) String() string {
	if l.Scheme == "file" {
		return "file:" + l.Dir
	}
	e := l.Endpoint
	if e == "" {
		e = "AWS S3"
	}
	return "s3://" + l.Bucket + "/" + l.Prefix + " at " + e + " (" + l.Region + ")"
}
