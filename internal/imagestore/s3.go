package imagestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// metaExpires is the user metadata (x-amz-meta-imagegw-expires) holding an object's expiry, in
// Unix seconds.
const metaExpires = "Imagegw-Expires"

// openTimeout bounds the bucket check at open.
const openTimeout = 15 * time.Second

// s3Backend keeps images in an S3-compatible bucket under a key prefix, one object per image
// with its content type and its expiry (metadata): any replica on the same bucket serves any
// image. An object expires at the earlier of its stored expiry and its age passing the TTL, so
// GET and Sweep (which lists ages, not metadata) agree.
type s3Backend struct {
	client    *minio.Client
	core      minio.Core
	loc       *Location
	ttl       time.Duration
	anonymous bool
	desc      string
	transport http.RoundTripper
}

// openS3 connects to loc's endpoint and checks the bucket, creating it when it is missing.
func openS3(ctx context.Context, loc *Location, ttl time.Duration, cred Credentials, rt http.RoundTripper) (*s3Backend, error) {
	host, secure := "s3.amazonaws.com", true
	if loc.Endpoint != "" {
		u, err := url.Parse(loc.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("imagestore: s3 endpoint: %w", err)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	if (cred.AccessKeyID == "") != (cred.SecretAccessKey == "") {
		return nil, errors.New("imagestore: s3: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (anonymous requests)")
	}
	if rt == nil {
		tr, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("imagestore: s3: %w", err)
		}
		// Every in-flight image download streams over its own connection: keep enough idle
		// ones for bursts (Go's default of 2 per host reopens connections under load).
		tr.MaxIdleConnsPerHost = 64
		rt = tr
	}
	lookup := minio.BucketLookupAuto
	if loc.PathStyle != nil {
		lookup = minio.BucketLookupDNS
		if *loc.PathStyle {
			lookup = minio.BucketLookupPath
		}
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cred.AccessKeyID, cred.SecretAccessKey, cred.SessionToken),
		Secure:       secure,
		Transport:    rt,
		Region:       loc.Region,
		BucketLookup: lookup,
		// A request on a client's path fails fast; the request's deadline bounds retries too.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("imagestore: s3 %s: %w", loc, err)
	}
	client.SetAppInfo("imagegw", "1")
	b := &s3Backend{client: client, core: minio.Core{Client: client}, loc: loc, ttl: ttl,
		anonymous: cred.AccessKeyID == "", transport: rt}
	b.desc = "s3://" + loc.Bucket + "/" + loc.Prefix + " at " + client.EndpointURL().String() + " (" + cred.String() + ")"

	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	ok, err := client.BucketExists(ctx, loc.Bucket)
	if err != nil {
		return nil, fmt.Errorf("imagestore: %s: bucket check: %w", b.desc, err)
	}
	if !ok {
		err := client.MakeBucket(ctx, loc.Bucket, minio.MakeBucketOptions{Region: loc.Region})
		if code := minio.ToErrorResponse(err).Code; err != nil && code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			return nil, fmt.Errorf("imagestore: %s: the bucket does not exist and could not be created: %w", b.desc, err)
		}
	}
	return b, nil
}

// String describes the backend without credentials.
func (b *s3Backend) String() string { return b.desc }

func (b *s3Backend) key(name string) string { return b.loc.Prefix + name }

// Put uploads the image in one request (no multipart upload, so no incomplete uploads are
// left behind), with its type, its expiry and a Cache-Control for clients that fetch it
// directly (presigned).
func (b *s3Backend) Put(ctx context.Context, name string, data []byte, contentType string, expires time.Time) error {
	_, err := b.client.PutObject(ctx, b.loc.Bucket, b.key(name), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:      contentType,
		CacheControl:     fmt.Sprintf("private, max-age=%d, immutable", int(b.ttl.Seconds())),
		UserMetadata:     map[string]string{metaExpires: strconv.FormatInt(expires.Unix(), 10)},
		DisableMultipart: true,
		// UNSIGNED-PAYLOAD, as over HTTPS: no per-chunk signing (aws-chunked) over plain HTTP,
		// which some S3-compatible servers lack and which costs a SHA-256 pass over the image.
		DisableContentSha256: true,
	})
	if err != nil {
		return fmt.Errorf("imagestore: s3 put: %w", err)
	}
	return nil
}

// Get answers a HEAD with the object's metadata (one HEAD request) and a GET with its body as
// the object store sends it (one GET request, streamed).
func (b *s3Backend) Get(ctx context.Context, name string, head bool) (*Object, error) {
	if head {
		info, err := b.client.StatObject(ctx, b.loc.Bucket, b.key(name), minio.StatObjectOptions{})
		if err != nil {
			return nil, b.getErr(err)
		}
		return b.object(info), nil
	}
	body, info, _, err := b.core.GetObject(ctx, b.loc.Bucket, b.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, b.getErr(err)
	}
	obj := b.object(info)
	obj.Body = body
	return obj, nil
}

func (b *s3Backend) getErr(err error) error {
	if r := minio.ToErrorResponse(err); r.Code == minio.NoSuchKey || r.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	return fmt.Errorf("imagestore: s3 get: %w", err)
}

func (b *s3Backend) object(info minio.ObjectInfo) *Object {
	obj := &Object{Size: info.Size, ContentType: info.ContentType, ModTime: info.LastModified}
	if !info.LastModified.IsZero() {
		obj.Expires = info.LastModified.Add(b.ttl)
	}
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, metaExpires) {
			if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
				if e := time.Unix(sec, 0); obj.Expires.IsZero() || e.Before(obj.Expires) {
					obj.Expires = e
				}
			}
		}
	}
	return obj
}

// Sweep lists the prefix and deletes (in batches) the images older than the TTL. Objects whose
// names are not an image's are left alone, so the prefix may be shared. Replicas sweeping at
// once delete the same objects twice, harmlessly.
func (b *s3Backend) Sweep(ctx context.Context, now time.Time) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	expired := make(chan minio.ObjectInfo)
	listed := make(chan struct{})
	var listErr error
	sent := 0
	go func() {
		defer close(listed)
		defer close(expired)
		for obj := range b.client.ListObjects(ctx, b.loc.Bucket, minio.ListObjectsOptions{Prefix: b.loc.Prefix, Recursive: true}) {
			if obj.Err != nil {
				listErr = obj.Err
				return
			}
			if !nameRE.MatchString(strings.TrimPrefix(obj.Key, b.loc.Prefix)) || now.Sub(obj.LastModified) <= b.ttl {
				continue
			}
			select {
			case expired <- obj:
				sent++
			case <-ctx.Done():
				return
			}
		}
	}()
	failed := 0
	var firstErr error
	for e := range b.client.RemoveObjects(ctx, b.loc.Bucket, expired, minio.RemoveObjectsOptions{}) {
		if firstErr == nil {
			firstErr = e.Err
		}
		failed++
	}
	// RemoveObjects is done: stop the lister if it still runs, then listErr and sent are final.
	cancel()
	<-listed
	switch {
	case listErr != nil:
		return sent - failed, fmt.Errorf("imagestore: s3 sweep: list: %w", listErr)
	case firstErr != nil:
		return sent - failed, fmt.Errorf("imagestore: s3 sweep: %d of %d deletes failed: %w", failed, sent, firstErr)
	}
	return sent, nil
}

// Presign returns a presigned GET URL valid for ttl. Anonymous stores cannot sign: they return
// the object's plain path-style URL, which works where the bucket allows anonymous reads (as
// a server without authentication does).
func (b *s3Backend) Presign(ctx context.Context, name string, ttl time.Duration) (string, error) {
	if b.anonymous {
		u := b.client.EndpointURL()
		u.Path = "/" + b.loc.Bucket + "/" + b.key(name)
		return u.String(), nil
	}
	u, err := b.client.PresignedGetObject(ctx, b.loc.Bucket, b.key(name), max(ttl, time.Second), nil)
	if err != nil {
		return "", fmt.Errorf("imagestore: s3 presign: %w", err)
	}
	return u.String(), nil
}

// Close closes idle connections to the object store.
func (b *s3Backend) Close() error {
	if t, ok := b.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return nil
}
