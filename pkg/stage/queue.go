package stage

import "container/heap"

// expiryQueue is a min-heap of deadlines. Entries are not removed on early deletion; the
// janitor skips names that are no longer tracked.
type expiryQueue struct{ items expiryItems }

type expiryItem struct {
	at   int64 // Unix nanoseconds
	name string
}

type expiryItems []expiryItem

func (q expiryItems) Len() int           { return len(q) }
func (q expiryItems) Less(i, j int) bool { return q[i].at < q[j].at }
func (q expiryItems) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryItems) Push(x any)        { *q = append(*q, x.(expiryItem)) }
func (q *expiryItems) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// push adds a deadline and reports whether it is now the earliest.
func (q *expiryQueue) push(at int64, name string) bool {
	heap.Push(&q.items, expiryItem{at, name})
	return q.items[0].name == name && q.items[0].at == at
}

func (q *expiryQueue) peek() (int64, bool) {
	if len(q.items) == 0 {
		return 0, false
	}
	return q.items[0].at, true
}

func (q *expiryQueue) pop() string {
	return heap.Pop(&q.items).(expiryItem).name
}
