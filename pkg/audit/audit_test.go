package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordsNameThePod(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "etl-7", "0c5f-uid")
	l.Log(Record{Action: "stage", Owner: "apps/etl", Outcome: Allowed})
	l.Log(Record{Action: "stage", Owner: "apps/etl", Pod: "other", Outcome: Denied})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	var a, b Record
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &a))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &b))
	assert.Equal(t, "etl-7", a.Pod)
	assert.Equal(t, "0c5f-uid", a.PodUID)
	assert.False(t, a.Time.IsZero())
	assert.Equal(t, "other", b.Pod, "a record that names its pod keeps it")
	assert.Empty(t, b.PodUID)
	var nilLogger *Logger
	nilLogger.Log(Record{Action: "x"}) // a nil logger drops records
}

// Concurrent records are whole lines, never interleaved.
func TestConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "p", "")
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Log(Record{Action: "stage", Owner: strings.Repeat("o", 200), Outcome: Allowed})
		}()
	}
	wg.Wait()
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r Record
		require.NoError(t, json.Unmarshal([]byte(line), &r))
	}
}
