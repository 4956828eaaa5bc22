package stage

import (
	"context"
	"io/fs"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The stager keeps only a small entry per copy; what Delete reports comes back from the
// metadata file, and a lost or forged metadata file neither blocks the deletion nor redirects it.
func TestDeleteReportsMetadataFromDisk(t *testing.T) {
	for _, tc := range []struct {
		name       string
		damage     func(t *testing.T, path string)
		wantSource string
	}{
		{"intact", func(*testing.T, string) {}, "dir/b.txt"},
		{"lost", func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) }, ""},
		{"forged target", func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, []byte(`{"name":"x","target":"/etc/passwd"}`), 0o600))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s := newStager(t, f)
			m, err := s.Stage(context.Background(), req("dir/b.txt"))
			require.NoError(t, err)
			tc.damage(t, s.metaPath(m.Name))
			got, err := s.Delete(m.Name, m.CallerDir)
			require.NoError(t, err)
			assert.Equal(t, tc.wantSource, got.Source)
			assert.Equal(t, m.Target, got.Target, "the target comes from the entry")
			assert.Equal(t, m.Size, got.Size)
			_, err = os.Stat(m.Target)
			assert.ErrorIs(t, err, fs.ErrNotExist)
			b, n := s.Usage()
			assert.Zero(t, b)
			assert.Zero(t, n)
		})
	}
}
