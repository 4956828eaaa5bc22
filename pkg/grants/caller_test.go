package grants

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCallerJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Caller
		wantErr  string
	}{
		{"user and groups", `{"user":"ann","groups":["g"]}`, Caller{User: "ann", Groups: []string{"g"}}, ""},
		{"service_account", `{"service_account":"apps/etl"}`, Caller{ServiceAccount: "apps/etl"}, ""},
		// Sidecars from before the wire was snake_case, during a rolling upgrade.
		{"legacy serviceAccount", `{"serviceAccount":"apps/etl"}`, Caller{ServiceAccount: "apps/etl"}, ""},
		{"both spellings agreeing", `{"service_account":"apps/etl","serviceAccount":"apps/etl"}`, Caller{ServiceAccount: "apps/etl"}, ""},
		{"both spellings differing", `{"service_account":"apps/etl","serviceAccount":"apps/other"}`, Caller{}, "differ"},
		{"an unknown field", `{"user":"ann","admin":true}`, Caller{}, "unknown field"},
		{"not an object", `"ann"`, Caller{}, "caller"},
		{"null", `null`, Caller{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Caller
			err := json.Unmarshal([]byte(tc.in), &c)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c)
		})
	}
}

// Every encoder writes the one spelling; the legacy one is read only.
func TestCallerEncodesSnakeCase(t *testing.T) {
	b, err := json.Marshal(Caller{User: "ann", ServiceAccount: "apps/etl"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"user":"ann","service_account":"apps/etl"}`, string(b))
	var back Caller
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, Caller{User: "ann", ServiceAccount: "apps/etl"}, back)
}
