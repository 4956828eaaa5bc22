package cloudstorage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/warden-dev/warden/pkg/brokerapi"
)

// GCS lists objects with Cloud Storage's JSON API through cloud.google.com/go/storage. Endpoint
// points it at another server (fake-gcs-server in tests: "http://HOST:PORT/storage/v1/").
type GCS struct {
	Endpoint string
}

// List implements Lister with the given token (a downscoped read credential of the space).
func (g GCS) List(ctx context.Context, tok *oauth2.Token, bucket, prefix string, limit int) ([]brokerapi.Object, error) {
	opts := []option.ClientOption{option.WithTokenSource(oauth2.StaticTokenSource(tok))}
	if g.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(g.Endpoint))
	}
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: Cloud Storage client: %v", ErrUnavailable, err)
	}
	defer c.Close()
	it := c.Bucket(bucket).Objects(ctx, &storage.Query{Prefix: prefix})
	var out []brokerapi.Object
	for len(out) < limit {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, classifyHTTP("Cloud Storage list gs://"+bucket+"/"+prefix, err)
		}
		o := brokerapi.Object{Name: a.Name, Size: a.Size, Generation: a.Generation, Updated: a.Updated}
		if len(a.MD5) > 0 {
			o.MD5 = base64.StdEncoding.EncodeToString(a.MD5)
		}
		if a.CRC32C != 0 {
			b := []byte{byte(a.CRC32C >> 24), byte(a.CRC32C >> 16), byte(a.CRC32C >> 8), byte(a.CRC32C)}
			o.CRC32C = base64.StdEncoding.EncodeToString(b)
		}
		out = append(out, o)
	}
	return out, nil
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
	if errors.Is(err, storage.ErrBucketNotExist) {
		return fmt.Errorf("%w: %s: %v", ErrDenied, what, err)
	}
	return classify(what, err)
}
