package broker

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"

	"github.com/warden-dev/warden/pkg/brokerapi"
)

func TestBrokerMetrics(t *testing.T) {
	f := newFixture(t)
	tok := f.pod(t, "apps", "good", true)
	f.call(tok, brokerapi.PathCheck, `{"dataset":"d1","caller":{"user":"ann"}}`)
	f.call(tok, brokerapi.PathCheck, `{"dataset":"d1","caller":{"user":"ann"}}`)
	f.call("nope", brokerapi.PathCheck, `{}`)
	f.call(tok, "/v1/"+strings.Repeat("x", 100), `{}`) // a path the caller made up
	count := func(route, code string) float64 {
		return testutil.ToFloat64(f.srv.metrics.requests.WithLabelValues(route, code))
	}
	assert.Equal(t, 2.0, count(brokerapi.PathCheck, "200"))
	assert.Equal(t, 1.0, count(brokerapi.PathCheck, "401"))
	assert.Equal(t, 1.0, count("other", "404"), "unmatched paths never become labels")
	assert.Equal(t, 3, testutil.CollectAndCount(f.srv.metrics.requests))
}
