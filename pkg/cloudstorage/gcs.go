package cloudstorage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	storagev1 "google.golang.org/api/storage/v1"

	"github.com/warden-dev/warden/pkg/brokerapi"
)

// GCS lists objects with Cloud Storage's JSON API through its generated REST client
// (google.golang.org/api/storage/v1). Not cloud.google.com/go/storage: it links its gRPC client
// (xDS, Envoy's protos, OpenTelemetry), whose package initialisation alone put 16 MB in the
// webhook's binary and most of it into its resident memory, for one list call. Endpoint points
// it at another server (fake-gcs-server in tests: "http://HOST:PORT/storage/v1/").
type GCS struct {
	Endpoint string
}

// List implements Lister with the given token (a downscoped read credential of the space).
func (g GCS) List(ctx context.Context, tok *oauth2.Token, bucket, prefix string, limit int) ([]brokerapi.Object, error) {
	opts := []option.ClientOption{option.WithTokenSource(oauth2.StaticTokenSource(tok))}
	if g.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(g.Endpoint))
	}
	if limit <= 0 {
		return nil, nil
	}
	svc, err := storagev1.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: Cloud Storage client: %v", ErrUnavailable, err)
	}
	var out []brokerapi.Object
	call := svc.Objects.List(bucket).Prefix(prefix).Context(ctx)
	for page := ""; ; {
		objs, err := call.PageToken(page).MaxResults(int64(min(limit-len(out), 1000))).Do()
		if err != nil {
			return nil, classifyHTTP("Cloud Storage list gs://"+bucket+"/"+prefix, err)
		}
		for _, a := range objs.Items {
			o := brokerapi.Object{Name: a.Name, Size: int64(a.Size), Generation: a.Generation, MD5: a.Md5Hash, CRC32C: a.Crc32c}
			if o.Updated, err = time.Parse(time.RFC3339Nano, a.Updated); err != nil && a.Updated != "" {
				return nil, fmt.Errorf("%w: Cloud Storage list gs://%s/%s: object %q updated %q: %v", ErrUnavailable, bucket, prefix, a.Name, a.Updated, err)
			}
			if out = append(out, o); len(out) == limit {
				return out, nil
			}
		}
		if page = objs.NextPageToken; page == "" {
			return out, nil
		}
	}
}

// classifyHTTP is classify for the JSON APIs' errors.
func classifyHTTP(what string, err error) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == http.StatusTooManyRequests || ge.Code >= 500:
			return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
		case ge.Code >= 400:
			return fmt.Errorf("%w: %s: %v", ErrDenied, what, err)
		}
	}
	return classify(what, err)
}
