package exactcache

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCacheBounds(t *testing.T) {
	c := &Cache[int]{MaxEntries: 4, MaxKey: 8}
	c.Put("abc", 1)
	v, ok := c.Get([]byte("abc"))
	assert.True(t, ok)
	assert.Equal(t, 1, v)
	v, ok = c.GetString("abc")
	assert.True(t, ok)
	assert.Equal(t, 1, v)

	big := strings.Repeat("x", 9)
	c.Put(big, 2)
	_, ok = c.GetString(big)
	assert.False(t, ok, "a key over MaxKey is never remembered")

	for i := range 10 {
		c.Put(strings.Repeat("y", i%8+1)+string(rune('a'+i)), i)
		assert.LessOrEqual(t, c.Len(), 4)
	}
	_, ok = c.Get([]byte("zz"))
	assert.False(t, ok)
}
