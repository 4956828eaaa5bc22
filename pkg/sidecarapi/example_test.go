package sidecarapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/sidecarapi"
)

// App code stages a dataset's file for the person it acts for, then reads it from the path the
// answer names. In a pod, sidecarapi.FromEnv finds the sidecar at 127.0.0.1:$WARDEN_PORT; here
// a stand-in answers as the sidecar does.
func ExampleClient_Stage() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+sidecarapi.PathDatasetAccess, func(w http.ResponseWriter, r *http.Request) {
		a := sidecarapi.Access{DatasetID: r.PathValue("id"),
			Owner:  grants.Access{Name: "apps/etl", CanRead: true},
			Caller: grants.Access{Name: r.Header.Get(sidecarapi.CallerHeader), CanRead: r.PathValue("id") == "prod-dataset-1"}}
		status := http.StatusOK
		if !a.Allowed() {
			status = http.StatusForbidden
		}
		httpjson.Write(w, status, a)
	})
	mux.HandleFunc("POST "+sidecarapi.PathDatasetStage, func(w http.ResponseWriter, r *http.Request) {
		var req sidecarapi.StageRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if r.PathValue("id") != "prod-dataset-1" {
			httpjson.WriteError(w, http.StatusForbidden, httpjson.CodeForbidden, "access denied")
			return
		}
		httpjson.Write(w, http.StatusCreated, sidecarapi.Staged{Path: "/secure/datasets/data/user=ann/1f-" + req.Path,
			Name: "1f-" + req.Path, ExpiresAt: time.Now().Add(time.Duration(req.TTLSeconds) * time.Second)})
	})
	sidecar := httptest.NewServer(mux)
	defer sidecar.Close()

	ctx := context.Background()
	c := &sidecarapi.Client{BaseURL: sidecar.URL, Caller: "ann"}
	for _, id := range []string{"prod-dataset-1", "prod-dataset-2"} {
		a, err := c.Access(ctx, id)
		fmt.Println(id, a.Allowed(), err)
	}
	s, err := c.Stage(ctx, "prod-dataset-1", sidecarapi.StageRequest{Path: "sales.csv", TTLSeconds: 600})
	fmt.Println(s.Path, err)
	_, err = c.Stage(ctx, "prod-dataset-2", sidecarapi.StageRequest{Path: "sales.csv"})
	var refused *sidecarapi.Error
	fmt.Println(errors.As(err, &refused), refused.Code)
	// Output:
	// prod-dataset-1 true <nil>
	// prod-dataset-2 false <nil>
	// /secure/datasets/data/user=ann/1f-sales.csv <nil>
	// true forbidden
}
