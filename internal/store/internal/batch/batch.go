// Package batch gathers the writes waiting for a store's writer goroutine
// into one group commit.
package batch

// Gather takes first, then every item already waiting in ch, without
// waiting for more, until the batch holds maxItems items or their weights
// add up to maxWeight. It appends to buf[:0] and returns the batch. A
// closed ch ends the gathering; the caller's range over ch then ends.
func Gather[T any](buf []T, first T, ch <-chan T, maxItems, maxWeight int, weight func(T) int) []T {
	b := append(buf[:0], first)
	w := weight(first)
	for len(b) < maxItems && w < maxWeight {
		select {
		case x, ok := <-ch:
			if !ok {
				return b
			}
			b = append(b, x)
			w += weight(x)
		default:
			return b
		}
	}
	return b
}
