// Package testkit holds test-only helpers: known-answer vectors,
// deterministic randomness, and loaders for third-party test vectors such
// as [Wycheproof].
//
// Nothing in testkit may be imported by non-test code. Helpers take a
// [testing.TB] and report problems with t.Fatalf; none of them skip, so a
// CI run never passes by silently testing nothing.
//
// [Wycheproof]: https://github.com/C2SP/wycheproof
package testkit
