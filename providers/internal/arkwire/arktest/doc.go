// Package arktest holds the test helpers the Ark and Modelverse packages and their fakes share:
// a settable clock, small input images, a client for the fakes' JSON answers, the response
// golden-file loop and the checks the response fuzzers make. It is imported only by tests.
package arktest
