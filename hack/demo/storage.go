package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	gcs "cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/warden-dev/warden/internal/testing/testgcp"
)

// demoStorage shows short-lived Cloud Storage credentials: an upload token used with Google's
// own client, a signed URL used with plain HTTP, a commit announced on Pub/Sub, and refusals.
func demoStorage(ctx context.Context, show func(what, method, path, caller, body string) (int, string), gcp *testgcp.Env) error {
	fmt.Println("\nCloud Storage: one space, one access kind, for minutes (org1's loading zone: gs://org1-data/loadingzone/)")
	code, out := show("upload credentials for the loading zone", "POST", "/v1/storage/credentials", "user-ds-2", `{"org":"org1","space":"loadingzone","access":"upload"}`)
	if code != http.StatusOK {
		return fmt.Errorf("storage credentials: %d %s", code, out)
	}
	var cred struct {
		AccessToken string `json:"access_token"`
		Bucket      string `json:"bucket"`
		Prefix      string `json:"prefix"`
	}
	if err := json.Unmarshal([]byte(out), &cred); err != nil {
		return err
	}
	if issued, ok := gcp.STS.Boundary(cred.AccessToken); ok {
		r := issued.Rules[0]
		fmt.Printf("  what the token reaches (STS's access boundary): %s, %v,\n    condition %s\n", r.Resource, r.Permissions, r.Expression)
	}
	client, err := gcs.NewClient(ctx, option.WithEndpoint(gcp.GCSEndpoint()),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: cred.AccessToken})))
	if err != nil {
		return err
	}
	defer client.Close()
	name := cred.Prefix + "batch-1/orders.csv"
	w := client.Bucket(cred.Bucket).Object(name).NewWriter(ctx)
	if _, err := io.WriteString(w, "order,amount\n1,20\n2,35\n"); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Printf("  app code uploaded gs://%s/%s with Google's Go client and the token (option.WithTokenSource)\n", cred.Bucket, name)

	code, out = show("a signed URL for one more file", "POST", "/v1/storage/signed-url", "user-ds-2", `{"org":"org1","space":"loadingzone","object":"batch-1/customers.csv","method":"PUT"}`)
	if code != http.StatusOK {
		return fmt.Errorf("signed url: %d %s", code, out)
	}
	var signed struct{ URL string }
	_ = json.Unmarshal([]byte(out), &signed)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, signed.URL, strings.NewReader("customer\nacme\n"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	fmt.Printf("  $ curl -X PUT --upload-file customers.csv \"$URL\"   -> %s\n", resp.Status)

	code, out = show("commit: list the upload and tell processing", "POST", "/v1/storage/commit", "user-ds-2", `{"org":"org1","space":"loadingzone","root_dir":"batch-1"}`)
	if code != http.StatusOK {
		return fmt.Errorf("commit: %d %s", code, out)
	}
	if msgs := gcp.PubSub.Messages(); len(msgs) > 0 {
		m := msgs[len(msgs)-1]
		fmt.Printf("  Pub/Sub (pstest) got message %s on org1-commits, attributes %v:\n%s", m.ID, m.Attributes, indent(string(m.Data)))
	}
	show("read the internal space 'curated' (org access is enough)", "POST", "/v1/storage/credentials", "user-ds-1", `{"org":"org1","space":"curated","access":"read"}`)
	show("refused: user-ds-1 holds no role in the loading zone", "POST", "/v1/storage/credentials", "user-ds-1", `{"org":"org1","space":"loadingzone","access":"upload"}`)
	show("refused: deleting in 'curated' needs trustee", "POST", "/v1/storage/credentials", "user-ds-2", `{"org":"org1","space":"curated","access":"delete"}`)
	show("refused: a signed URL outside the space", "POST", "/v1/storage/signed-url", "user-ds-2", `{"org":"org1","space":"loadingzone","object":"../curated/report.csv","method":"GET"}`)
	return nil
}
