package brokerapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/grants"
)

// A sidecar asks the broker whether its owner may read a dataset for a caller. In a cluster the
// client has the pod certificate (ClientCertificate) on an mTLS transport; here a stand-in
// broker answers as the real one does.
func ExampleClient_Check() {
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req brokerapi.CheckRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		_ = json.NewEncoder(w).Encode(grants.Decision{DatasetID: req.Dataset,
			Owner:  grants.Access{Name: "apps/etl", CanRead: true},
			Caller: grants.Access{Name: req.Caller.Name(), CanRead: req.Caller.User == "ann"}})
	}))
	defer broker.Close()

	c := &brokerapi.Client{BaseURL: broker.URL, HTTP: broker.Client()}
	for _, who := range []string{"ann", "bob"} {
		d, err := c.Check(context.Background(), "apps/etl", grants.Caller{User: who}, "prod-dataset-1")
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(who, d.Allowed())
	}
	// A broker answering for another owner is not believed.
	_, err := c.Check(context.Background(), "apps/other", grants.Caller{User: "ann"}, "prod-dataset-1")
	fmt.Println(err != nil)
	// Output:
	// ann true
	// bob false
	// true
}
