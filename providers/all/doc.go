// Package all links every provider adapter into a binary: importing it for its side effects
// registers each adapter with the providers registry.
//
//	import _ "github.com/imagegw/imagegw/providers/all"
//
// An adapter that is added to the repository is added here too.
package all
