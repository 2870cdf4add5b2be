package batch

import "testing"

func TestGather(t *testing.T) {
	one := func(int) int { return 1 }
	tests := []struct {
		name      string
		waiting   []int
		close     bool
		maxItems  int
		maxWeight int
		weight    func(int) int
		want      int
	}{
		{"takes what waits", []int{2, 3}, false, 10, 10, one, 3},
		{"stops at maxItems", []int{2, 3, 4}, false, 2, 10, one, 2},
		{"stops at maxWeight", []int{5, 5, 5}, false, 10, 6, func(x int) int { return x }, 2},
		{"a heavy first item goes alone", []int{1}, false, 10, 4, func(x int) int { return x + 4 }, 1},
		{"closed channel", []int{2}, true, 10, 10, one, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := make(chan int, len(tt.waiting))
			for _, x := range tt.waiting {
				ch <- x
			}
			if tt.close {
				close(ch)
			}
			got := Gather(nil, 1, ch, tt.maxItems, tt.maxWeight, tt.weight)
			if len(got) != tt.want || got[0] != 1 {
				t.Fatalf("Gather = %v, want %d items starting with 1", got, tt.want)
			}
		})
	}
}
