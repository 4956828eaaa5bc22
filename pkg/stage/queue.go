package stage

import (
	"container/heap"
	"time"
)

// expiryQueue is a min-heap of deadlines. Entries are not removed on early deletion; the
// janitor skips names that are no longer tracked.
type expiryQueue struct{ items expiryItems }

type expiryItem struct {
	at   time.Time
	name string
}

type expiryItems []expiryItem

func (q expiryItems) Len() int           { return len(q) }
func (q expiryItems) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q expiryItems) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryItems) Push(x any)        { *q = append(*q, x.(expiryItem)) }
func (q *expiryItems) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// push adds a deadline and reports whether it is now the earliest.
func (q *expiryQueue) push(at time.Time, name string) bool {
	heap.Push(&q.items, expiryItem{at, name})
	return q.items[0].name == name && q.items[0].at.Equal(at)
}

func (q *expiryQueue) peek() (time.Time, bool) {
	if len(q.items) == 0 {
		return time.Time{}, false
	}
	return q.items[0].at, true
}

func (q *expiryQueue) pop() string {
	return heap.Pop(&q.items).(expiryItem).name
}
