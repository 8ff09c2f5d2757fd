// Package imagestore keeps the images the gateway hosts itself: when a provider returns bytes
// (or, with images.rehost_provider_urls, a URL the gateway downloads) and the client asked for
// response_format=url, the bytes are stored under an unguessable name (128 random bits) and
// served until they expire.
//
// A Store does the naming, the expiry and the serving; a Backend keeps the bytes. There are two
// backends, chosen by one URL (Options.URL, the images_url setting):
//
//   - file:///var/lib/imagegw/images (or file:relative/dir): a local directory with a size cap
//     per process; when the directory holds more than the cap, newer images push out the oldest.
//     A URL made by one replica is served only by replicas that see the same directory.
//   - s3://bucket/prefix?endpoint=http://host:port&region=…: S3-compatible object storage (AWS
//     S3, R2, GCS interoperability, MinIO, SeaweedFS), shared by every replica. Each object
//     carries its expiry in its metadata; Sweep deletes expired objects by their age.
//
// Hosted URLs point at the gateway's own route (GET /v1/images/files/{name}), which any replica
// answers by streaming the object from the backend; with presign=true on an s3 URL they are
// presigned S3 URLs instead, fetched from the object store directly.
//
// Every wait on the backend is bounded by Options.Timeout (images.timeout): a Put, a Get until
// the object starts, and any pause in a streamed body. A store that stops answering fails the
// request waiting on it instead of holding it.
package imagestore
