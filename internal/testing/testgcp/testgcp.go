// Package testgcp starts, in process, every Google service Warden's storage credentials touch:
// IAM Credentials and STS (Warden's fakes, as Google offers no emulator), Cloud Storage
// (github.com/fsouza/fake-gcs-server) and Pub/Sub (pstest, the Go client's own in-memory
// server). The broker talks to them through its production clients, pointed at these endpoints.
package testgcp

import (
	"context"
	"errors"
	"io"
	"net/url"

	credentials "cloud.google.com/go/iam/credentials/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/warden-dev/warden/internal/testing/fakecreds"
	"github.com/warden-dev/warden/internal/testing/fakests"
)

// Env is the running services.
type Env struct {
	Creds  *fakecreds.Server
	STS    *fakests.Server
	GCS    *fakestorage.Server
	PubSub *pstest.Server
	// IAM is a real IAM Credentials client dialed to Creds.
	IAM *credentials.IamCredentialsClient
}

// Start starts every service, with the given GCP service accounts existing in IAM Credentials.
func Start(ctx context.Context, accounts ...string) (*Env, error) {
	e := &Env{}
	var err error
	if e.Creds, err = fakecreds.Start(accounts...); err != nil {
		return nil, err
	}
	if e.STS, err = fakests.Start(e.Creds); err != nil {
		e.Close()
		return nil, err
	}
	// PublicHost without a port matches any port on 127.0.0.1, so signed URLs made for
	// GCSHost reach the server's XML routes.
	if e.GCS, err = fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1", Writer: io.Discard}); err != nil {
		e.Close()
		return nil, err
	}
	e.PubSub = pstest.NewServer()
	if e.IAM, err = credentials.NewIamCredentialsClient(ctx, option.WithEndpoint(e.Creds.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// STSEndpoint is the token URL of the fake STS.
func (e *Env) STSEndpoint() string { return e.STS.URL + "/v1/token" }

// GCSEndpoint is the JSON API endpoint of fake-gcs-server.
func (e *Env) GCSEndpoint() string { return e.GCS.URL() + "/storage/v1/" }

// GCSHost is the host:port signed URLs should name (over plain HTTP).
func (e *Env) GCSHost() string {
	u, _ := url.Parse(e.GCS.URL())
	return u.Host
}

// PubSubEndpoint is pstest's address (plain gRPC, no credentials).
func (e *Env) PubSubEndpoint() string { return e.PubSub.Addr }

// CreateTopic creates projects/PROJECT/topics/TOPIC in pstest.
func (e *Env) CreateTopic(ctx context.Context, project, topic string) error {
	_, err := e.PubSub.GServer.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + topic})
	return err
}

// Close stops everything that started.
func (e *Env) Close() {
	var errs []error
	if e.IAM != nil {
		errs = append(errs, e.IAM.Close())
	}
	if e.PubSub != nil {
		errs = append(errs, e.PubSub.Close())
	}
	if e.GCS != nil {
		e.GCS.Stop()
	}
	if e.STS != nil {
		e.STS.Close()
	}
	if e.Creds != nil {
		e.Creds.Stop()
	}
	_ = errors.Join(errs...)
}
