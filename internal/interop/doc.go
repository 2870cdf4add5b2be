// Package interop holds the differential tests that run Sotto's protocol
// packages against libsignal 0.72.1 itself (through internal/oracle), in
// both directions: sessions Sotto starts with libsignal and sessions
// libsignal starts with Sotto, sealed sender v1 and v2, sender keys and
// safety numbers. Every test name contains "Libsignal", so
//
//	go test -run Libsignal ./...
//
// runs this suite alone. The package has no non-test code.
package interop
