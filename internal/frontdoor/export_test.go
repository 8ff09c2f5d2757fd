package frontdoor

// WriteStringForTest exposes writeString to the external tests.
var WriteStringForTest = writeString
