package imagestore

// SeaweedFSURL is seaweedFSURL for the external tests (gateways_test.go).
var SeaweedFSURL = seaweedFSURL
